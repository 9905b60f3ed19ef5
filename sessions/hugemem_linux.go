//go:build linux && !race

package sessions

import (
	"syscall"
	"unsafe"
)

// offHeap: the table's large arrays live in mapped regions (hugemem.go).
const offHeap = true

// mapRegion maps size bytes (a multiple of hugePage) aligned to hugePage
// and asks for transparent huge pages on them; nil if the mapping fails.
// It maps one huge page more and uses the aligned part; the rest is never
// touched, so it takes address space but no memory.
func mapRegion(size uintptr) (unsafe.Pointer, []byte) {
	b, err := syscall.Mmap(-1, 0, int(size+hugePage), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, nil
	}
	start := unsafe.Pointer(unsafe.SliceData(b))
	head := (hugePage - uintptr(start)&(hugePage-1)) & (hugePage - 1)
	base := unsafe.Add(start, head)
	// Without huge pages (THP disabled, or not built in), the region works
	// all the same on small pages.
	madvise(base, size, syscall.MADV_HUGEPAGE)
	return base, b
}

// unmapAll unmaps what mapRegion mapped.
func unmapAll(b []byte) { syscall.Munmap(b) }

// discardRange gives the pages back; they read as zeros if touched again.
func discardRange(p unsafe.Pointer, size uintptr) {
	madvise(p, size, syscall.MADV_DONTNEED)
}

func madvise(p unsafe.Pointer, size uintptr, advice int) {
	syscall.Syscall(syscall.SYS_MADVISE, uintptr(p), size, uintptr(advice))
}
