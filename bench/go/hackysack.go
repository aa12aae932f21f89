// hackysack: bench/hackysack.cpp's game (Grant Olson's hackysackstackless.py) in Go, the port
// issue 15 compares against: a goroutine and an unbuffered channel per player, the same circle,
// the same xorshift64* for the random kicks, timed the same way (set-up and game, best and
// median of several runs). Run with GOMAXPROCS=1 (scripts/bench.sh does).
//
// The original's end: the kicker that reaches `turns` pops every player off the circle and sends
// each 'exit' (nil) until it pops itself; in Stackless it then blocks on its own channel as the
// last runnable tasklet and run() returns. Here it tells main the game is over instead (Go would
// report the deadlock). Players not popped stay blocked receiving, as in Stackless; main sends
// them 'exit' after the timed region (the C++ port kills them there).
//
// Usage: hackysack [-turns 1000] [-max 100000] [-reps 10]
package main

import (
	"flag"
	"fmt"
	"sort"
	"strconv"
	"time"
)

type player struct {
	name string
	ch   chan *player
}

var (
	turns   int
	counter int
	rng     uint64
	circle  []*player
	over    chan struct{}
)

func randint(lo, hi int) int { // inclusive, like random.randint (the C++ port's generator)
	rng ^= rng >> 12
	rng ^= rng << 25
	rng ^= rng >> 27
	r := rng * 0x2545F4914F6CDD1D
	return lo + int(((r>>32)*uint64(hi-lo+1))>>32)
}

func (p *player) messageLoop() {
	for {
		m := <-p.ch
		if m == nil {
			return
		}
		kickTo := circle[randint(0, len(circle)-1)]
		for kickTo == p {
			kickTo = circle[randint(0, len(circle)-1)]
		}
		counter++
		if counter >= turns {
			for len(circle) > 0 {
				h := circle[len(circle)-1]
				circle = circle[:len(circle)-1]
				if h == p {
					close(over) // Stackless: blocks on its own channel; run() returns
					return
				}
				h.ch <- nil
			}
		}
		kickTo.ch <- p
	}
}

func newPlayer(name string) *player {
	p := &player{name: name, ch: make(chan *player)}
	circle = append(circle, p)
	go p.messageLoop()
	return p
}

// runit(hs, ts): one game; returns its time in ms (set-up and game).
func runit(hs, ts int) float64 {
	turns = ts
	counter = 0
	rng = 0x9E3779B97F4A7C15
	over = make(chan struct{})
	t0 := time.Now()
	circle = nil
	one := newPlayer("1")
	for i := 0; i < hs; i++ {
		newPlayer(strconv.Itoa(i))
	}
	one.ch <- one
	<-over
	ms := float64(time.Since(t0).Nanoseconds()) / 1e6
	for _, h := range circle { // not timed: the players left blocked leave
		h.ch <- nil
	}
	circle = nil
	return ms
}

func main() {
	t := flag.Int("turns", 1000, "kicks per game")
	max := flag.Int("max", 100000, "largest number of players")
	reps := flag.Int("reps", 10, "games per size (3 for 100,000)")
	flag.Parse()
	fmt.Printf("hackysack (Go): runit(N, %d), best of %d (3 for 100,000)\n", *t, *reps)
	fmt.Printf("| players | best ms | median ms |\n|---|---|---|\n")
	for _, n := range []int{10, 100, 1000, 10000, 100000} {
		if n > *max {
			continue
		}
		k := *reps
		if n >= 100000 && k > 3 {
			k = 3
		}
		var ms []float64
		for i := 0; i < k; i++ {
			ms = append(ms, runit(n, *t))
		}
		sort.Float64s(ms)
		fmt.Printf("| %d | %.2f | %.2f |\n", n, ms[0], ms[len(ms)/2])
	}
}
