// select in Go: the same-run baseline for bench/select_bench. A round trip: the ping goroutine
// sends i with `select { case a <- i: case b <- i: }`, the pong goroutine receives it with a
// two-case select and sends it back the same way on c/d, and ping receives it with a two-case
// select: four selects and two rendezvous per round trip, unbuffered channels. Also the same
// round trip without select (plain sends and receives on a and c).
// Prints one line: "select_ns plain_ns" (best of -reps, ns per round trip). GOMAXPROCS is 1
// unless the environment says otherwise (select_bench sets it).
//
// Build: go build -o build/default/bench/select-go bench/go/select.go (scripts/bench.sh does).
package main

import (
	"flag"
	"fmt"
	"time"
)

func selectRoundTrips(n int) time.Duration {
	a, b, c, d := make(chan int), make(chan int), make(chan int), make(chan int)
	done := make(chan bool)
	go func() {
		for i := 0; i < n; i++ {
			var v int
			select {
			case v = <-a:
			case v = <-b:
			}
			select {
			case c <- v:
			case d <- v:
			}
		}
		done <- true
	}()
	start := time.Now()
	sum := 0
	for i := 0; i < n; i++ {
		select {
		case a <- i:
		case b <- i:
		}
		select {
		case v := <-c:
			sum += v
		case v := <-d:
			sum += v
		}
	}
	el := time.Since(start)
	<-done
	if sum != n*(n-1)/2 {
		panic("select-go: wrong sum")
	}
	return el
}

func plainRoundTrips(n int) time.Duration {
	a, c := make(chan int), make(chan int)
	go func() {
		for i := 0; i < n; i++ {
			c <- <-a
		}
	}()
	start := time.Now()
	for i := 0; i < n; i++ {
		a <- i
		<-c
	}
	return time.Since(start)
}

func main() {
	n := flag.Int("n", 1000000, "round trips")
	reps := flag.Int("reps", 5, "repetitions (best is printed)")
	flag.Parse()
	bestS, bestP := time.Duration(1<<62), time.Duration(1<<62)
	for r := 0; r < *reps; r++ {
		if t := selectRoundTrips(*n); t < bestS {
			bestS = t
		}
		if t := plainRoundTrips(*n); t < bestP {
			bestP = t
		}
	}
	fmt.Printf("%.1f %.1f\n", float64(bestS.Nanoseconds())/float64(*n),
		float64(bestP.Nanoseconds())/float64(*n))
}
