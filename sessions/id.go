package sessions

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"sync"
)

// An ID names a session: 128 bits from crypto/rand, as OWASP recommends for
// session identifiers (at least 64 bits of entropy). The table is sharded
// and hashed by the ID's own bytes: they are random, so no hash function is
// needed.
type ID [16]byte

// IDLen is the length of an ID's text form: base64url without padding.
const IDLen = 22

// ErrMalformedID is returned by ParseID for text that is not an ID.
var ErrMalformedID = errors.New("sessions: malformed session id")

// String returns the ID's text form: 22 characters of base64url without
// padding, safe in cookies and URLs.
func (id ID) String() string {
	var b [IDLen]byte
	base64.RawURLEncoding.Encode(b[:], id[:])
	return string(b[:])
}

// AppendText appends the ID's text form to b.
func (id ID) AppendText(b []byte) ([]byte, error) {
	return base64.RawURLEncoding.AppendEncode(b, id[:]), nil
}

// MarshalText returns the ID's text form.
func (id ID) MarshalText() ([]byte, error) { return id.AppendText(make([]byte, 0, IDLen)) }

// UnmarshalText parses an ID's text form, as ParseID does.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := parseID(b)
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseID parses the text form of an ID. Anything else (the wrong length,
// characters outside the base64url alphabet, padding, non-canonical trailing
// bits) gives ErrMalformedID. It does not allocate, so hostile input costs
// the caller nothing but the time to look at at most 22 bytes.
func ParseID(s string) (ID, error) { return parseID(s) }

// decodeMap maps a base64url character to its 6-bit value, or 0xff.
var decodeMap = func() (m [256]byte) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range m {
		m[i] = 0xff
	}
	for i := range len(alphabet) {
		m[alphabet[i]] = byte(i)
	}
	return m
}()

func parseID[T string | []byte](s T) (ID, error) {
	var id ID
	if len(s) != IDLen {
		return id, ErrMalformedID
	}
	// 22 characters carry 132 bits: 16 bytes and 4 bits that must be zero,
	// so each ID has exactly one text form.
	var bad byte
	var acc uint64
	n, out := 0, 0
	for i := range IDLen {
		v := decodeMap[s[i]]
		bad |= v & 0xc0 // 0xff for an invalid character
		acc = acc<<6 | uint64(v&0x3f)
		n += 6
		for n >= 8 && out < len(id) {
			n -= 8
			id[out] = byte(acc >> n)
			out++
		}
	}
	if bad != 0 || acc&(1<<n-1) != 0 {
		return ID{}, ErrMalformedID
	}
	return id, nil
}

// An IDSource hands out fresh IDs from crypto/rand, reading it in blocks:
// one 16-byte read costs 150-190 ns on these machines, a 4 KiB read about
// 70 ns per ID. Blocks live in a sync.Pool, so goroutines on different Ps do
// not contend, and bytes handed out are wiped and never handed out again.
// The zero IDSource is ready to use and safe for concurrent use. A Manager
// has its own; this one is for code that needs IDs the same way, such as a
// benchmark's baseline.
type IDSource struct{ pool sync.Pool }

type idBlock struct {
	buf [4096]byte
	off int
}

// Next returns a fresh ID.
func (s *IDSource) Next() ID {
	b, _ := s.pool.Get().(*idBlock)
	if b == nil {
		b = &idBlock{off: len(idBlock{}.buf)}
	}
	if b.off == len(b.buf) {
		rand.Read(b.buf[:]) // never fails since Go 1.24; it crashes the program instead
		b.off = 0
	}
	var id ID
	copy(id[:], b.buf[b.off:])
	clear(b.buf[b.off : b.off+len(id)])
	b.off += len(id)
	s.pool.Put(b)
	return id
}

// Parts of the ID the table uses, each from different bytes so that they
// are independent: the shard, the position in the shard's index, and an
// 8-bit tag kept in the index to skip most records that do not match.
func (id ID) shard(mask uint32) uint32 { return uint32(id[15]) & mask }
func (id ID) hash() uint64             { return binary.LittleEndian.Uint64(id[:8]) }
func (id ID) tag() uint32              { return uint32(id[8]) }
