package sessions

import (
	"bytes"
	"encoding/gob"
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
type GobCodec struct{}

// Marshal encodes v as a gob interface value.
func (GobCodec) Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(&v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Unmarshal decodes a value Marshal encoded.
func (GobCodec) Unmarshal(data []byte) (any, error) {
	var v any
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}
