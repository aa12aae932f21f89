// stackless_switch_fcontext: see switch_context.hpp. x86-64 System V (ELF) only; elsewhere the
// scheduler uses Boost.Context's jump_fcontext.
//
// Layout of a saved context (identical to Boost.Context 1.74+ make/jump_fcontext on x86-64):
//   0x00 MXCSR (4 bytes), x87 control word (2 bytes)
//   0x08 r12, 0x10 r13, 0x18 r14, 0x20 r15, 0x28 rbx, 0x30 rbp
//   0x38 return address (for a fresh context: make_fcontext's trampoline)
// On entry rdi = the context to resume, rsi = data. The resumed side receives
// transfer_t{fctx = the context just saved, data} in rax:rdx (and in rdi:rsi, which a fresh
// context's trampoline passes to the context function).
#include "switch_context.hpp"

#ifdef STACKLESS_OWN_SWITCH
asm(R"(
    .pushsection .text
    .globl  stackless_switch_fcontext
    .hidden stackless_switch_fcontext
    .type   stackless_switch_fcontext, @function
    .align  16
stackless_switch_fcontext:
    leaq    -0x38(%rsp), %rsp
    stmxcsr (%rsp)
    fnstcw  0x4(%rsp)
    movq    %r12, 0x8(%rsp)
    movq    %r13, 0x10(%rsp)
    movq    %r14, 0x18(%rsp)
    movq    %r15, 0x20(%rsp)
    movq    %rbx, 0x28(%rsp)
    movq    %rbp, 0x30(%rsp)
    movq    %rsp, %rax
    movq    %rdi, %rsp
    ldmxcsr (%rsp)
    fldcw   0x4(%rsp)
    movq    0x8(%rsp), %r12
    movq    0x10(%rsp), %r13
    movq    0x18(%rsp), %r14
    movq    0x20(%rsp), %r15
    movq    0x28(%rsp), %rbx
    movq    0x30(%rsp), %rbp
    leaq    0x38(%rsp), %rsp
    movq    %rsi, %rdx
    movq    %rax, %rdi
    ret
    .size   stackless_switch_fcontext, .-stackless_switch_fcontext
    .popsection
)");
#endif
