package sessions

import (
	"bytes"
	"encoding/gob"
	"errors"
)

// A Codec turns a session's values into bytes and back, for a snapshot
// (Manager.Snapshot, Config.Restore) and for any store that keeps sessions
// outside the process. Each value is encoded on its own, so that one can be
// decoded without the others. A Codec must be safe for concurrent use.
type Codec interface {
	// Marshal encodes v.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes what Marshal returned. It must not keep data,
	// whose memory is reused.
	Unmarshal(data []byte) (any, error)
}

// GobCodec is the default Codec: encoding/gob, which keeps a value's
// dynamic type. A value is stored as an interface, so gob must know every
// concrete type that is not one of its basic ones (bool, the integer and
// float types, string, []byte and slices of those): call gob.Register for
// each, in an init function of the program that sets and of the one that
// restores, or Marshal fails and with it the snapshot. Unexported struct
// fields are not saved.
//
// Strings and byte slices, what sessions mostly hold, skip gob: they are
// written as they are behind a one-byte tag. A gob encoder costs some
// microseconds and some 20 bytes of type description per value; this way a
// 100-byte string costs neither.
type GobCodec struct{}

// The first byte of what GobCodec writes.
const (
	tagGob    = 'g'
	tagString = 's'
	tagBytes  = 'b'
)

var errCodecTag = errors.New("sessions: GobCodec: unknown tag")

// An appendCodec can encode into a buffer of its caller's, which saves
// an allocation per value. A Codec may implement it; GobCodec does.
type appendCodec interface {
	// AppendMarshal appends the encoding of v to dst, as Marshal returns
	// it, and returns the extended buffer.
	AppendMarshal(dst []byte, v any) ([]byte, error)
}

// Marshal encodes v.
func (c GobCodec) Marshal(v any) ([]byte, error) { return c.AppendMarshal(nil, v) }

// AppendMarshal appends what Marshal returns to dst, for callers that keep
// a buffer.
func (GobCodec) AppendMarshal(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		return append(append(dst, tagString), x...), nil
	case []byte:
		return append(append(dst, tagBytes), x...), nil
	}
	b := bytes.NewBuffer(append(dst, tagGob))
	if err := gob.NewEncoder(b).Encode(&v); err != nil {
		return dst, err
	}
	return b.Bytes(), nil
}

// Unmarshal decodes a value Marshal encoded.
func (GobCodec) Unmarshal(data []byte) (any, error) {
	if len(data) == 0 {
		return nil, errCodecTag
	}
	switch data[0] {
	case tagString:
		return string(data[1:]), nil
	case tagBytes:
		return bytes.Clone(data[1:]), nil
	case tagGob:
		var v any
		if err := gob.NewDecoder(bytes.NewReader(data[1:])).Decode(&v); err != nil {
			return nil, err
		}
		return v, nil
	}
	return nil, errCodecTag
}
