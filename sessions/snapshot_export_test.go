package sessions

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"time"
)

// SnapshotHolds is Snapshot, telling hold how long each hold of a shard's
// lock lasted: what a touch may have to wait for it, apart from scheduling.
func (m *Manager) SnapshotHolds(w io.Writer, hold func(time.Duration)) error {
	return m.snapshot(w, hold)
}

// FixChecksums returns b with the checksums of its snapshot header and of
// every whole block it holds made right, so that a fuzzer's mutations reach
// the parser behind them instead of stopping at the first CRC.
func FixChecksums(b []byte) []byte {
	b = bytes.Clone(b)
	if len(b) < headerLen {
		return b
	}
	le := binary.LittleEndian
	le.PutUint32(b[32:], crc32.Checksum(b[:32], castagnoli))
	for p := headerLen; len(b)-p >= blockHeaderLen; {
		n := int(le.Uint32(b[p+4:]))
		if n > len(b)-p-blockHeaderLen {
			break
		}
		crc := crc32.Checksum(b[p:p+8], castagnoli)
		crc = crc32.Update(crc, castagnoli, b[p+blockHeaderLen:p+blockHeaderLen+n])
		le.PutUint32(b[p+8:], crc)
		p += blockHeaderLen + n
	}
	return b
}
