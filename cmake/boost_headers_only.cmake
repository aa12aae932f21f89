# Boost for the MinGW-w64 cross build (docs/windows.md): headers only, taken from the host's
# Boost (Debian ships no MinGW Boost libraries). The compiler must not see the host's
# /usr/include itself (its glibc headers break MinGW's), so the include directory is one that
# holds nothing but a `boost` symlink to ${STACKLESS_BOOST_ROOT}/boost.
#
# Targets: Boost::headers, Boost::context (headers: the runtime switches with Win32 fibers and
# uses only Boost.Context's fcontext_t/transfer_t types) and Boost::unit_test_framework (the
# header-only Boost.Test; tests/CMakeLists.txt compiles its implementation once).
set(STACKLESS_BOOST_ROOT /usr/include CACHE PATH "Directory holding the host's boost/ headers")
if(NOT EXISTS ${STACKLESS_BOOST_ROOT}/boost/version.hpp)
  message(FATAL_ERROR "Boost headers not found in STACKLESS_BOOST_ROOT=${STACKLESS_BOOST_ROOT} "
                      "(Debian: apt-get install libboost-dev)")
endif()
set(stackless_boost_dir ${CMAKE_BINARY_DIR}/boost-include)
file(MAKE_DIRECTORY ${stackless_boost_dir})
if(NOT EXISTS ${stackless_boost_dir}/boost)
  file(CREATE_LINK ${STACKLESS_BOOST_ROOT}/boost ${stackless_boost_dir}/boost SYMBOLIC)
endif()
foreach(t headers context unit_test_framework)
  if(NOT TARGET Boost::${t})
    add_library(Boost::${t} INTERFACE IMPORTED)
    set_target_properties(Boost::${t} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES ${stackless_boost_dir})
  endif()
endforeach()
