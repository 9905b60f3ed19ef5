//go:build !linux || race

package sessions

import "unsafe"

// offHeap: the table lives on the Go heap (hugemem.go). Under the race
// detector too: it checks only accesses to the heap and to globals.
const offHeap = false

func mapRegion(size uintptr) (unsafe.Pointer, []byte) { return nil, nil }
func discardRange(p unsafe.Pointer, size uintptr)     {}
func unmapAll(b []byte)                               {}
