// Package wheel implements a hierarchical timing wheel: a data structure that
// files integer handles under integer deadlines ("ticks") and reports each
// handle once time has reached its deadline.
//
// A Wheel knows nothing of clocks, goroutines or what a handle stands for. Its
// user owns the mapping from handles to whatever they name (the sessions
// package uses the index of a slot in its arena) and decides what a tick is.
// That keeps the wheel deterministic: tests drive it with plain integers.
//
// # Layout
//
// The wheel has 11 levels of 64 buckets. Level l holds deadlines that share
// all bits above 6(l+1) with the wheel's current tick, filed by bits
// 6l..6l+5; level 0 therefore holds exact ticks and level 10 covers the whole
// int64 range. This is the layout of the Varghese-Lauck hierarchical wheel as
// used by tokio's timer (where the level is derived from the highest bit in
// which the deadline and the current tick differ), not Kafka's overflow-wheel
// chain. When time reaches the start of a bucket above level 0, its handles
// are re-filed ("cascaded") into lower levels, so every handle is reported at
// the first Poll whose time reaches its exact deadline, never earlier and
// never later, and is cascaded at most 10 times on the way.
//
// A 64-bit occupancy word per level lets the wheel find the next non-empty
// bucket with a few bit operations, so moving over empty time costs nothing:
// a jump of days costs O(levels x occupied buckets), never O(ticks).
//
// # Memory
//
// Storage is pointer-free: 16 bytes per handle (two uint32 list links and the
// deadline) in fixed-size chunks, plus a fixed 6 KiB of bucket heads. Lists are
// circular and doubly linked through sentinel values, so a handle is removed in
// O(1) without knowing its bucket. Nothing is allocated in steady state; the
// chunks grow to cover the largest handle ever filed, so handles should be
// small dense integers, like slice indices.
package wheel
