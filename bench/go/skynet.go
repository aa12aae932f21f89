// skynet in Go, as github.com/atemerev/skynet runs it (unbuffered channels; each node starts its
// ten children, then receives ten results). The same-run baseline for bench/skynet: that program
// runs this binary once per repetition in a fresh process with GOMAXPROCS=1 and reads the line
// it prints: "ms warm_ms faults peak_alive" (warm_ms and peak_alive are -1: not measured here).
//
// Build: go build -o build-bench/bench/skynet-go bench/go/skynet.go (scripts/bench.sh does).
package main

import (
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"
)

func skynet(c chan int, num, size, div int) {
	if size == 1 {
		c <- num
		return
	}
	rc := make(chan int)
	for i := 0; i < div; i++ {
		subNum := num + i*(size/div)
		go skynet(rc, subNum, size/div, div)
	}
	sum := 0
	for i := 0; i < div; i++ {
		sum += <-rc
	}
	c <- sum
}

func faults() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fmt.Fprintln(os.Stderr, "skynet-go: getrusage:", err)
		os.Exit(1)
	}
	return ru.Minflt + ru.Majflt
}

func main() {
	size := flag.Int("size", 1000000, "leaves (a power of ten)")
	flag.Parse()
	f0 := faults()
	start := time.Now()
	c := make(chan int)
	go skynet(c, 0, *size, 10)
	sum := <-c
	elapsed := time.Since(start)
	f1 := faults()
	want := *size * (*size - 1) / 2
	if sum != want {
		fmt.Fprintf(os.Stderr, "skynet-go: wrong sum %d (want %d)\n", sum, want)
		os.Exit(1)
	}
	fmt.Printf("%.3f -1 %d -1\n", float64(elapsed.Nanoseconds())/1e6, f1-f0)
}
