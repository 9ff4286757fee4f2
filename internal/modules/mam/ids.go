package mam

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/microclock"
)

// Archive IDs. Inside, an ID is a uint64: the archiving time in
// microseconds shifted left by 8 bits, plus a node number in the low 8
// bits, so IDs grow with time, never repeat within a node (a clock
// that stands still or steps back gets the last ID + 1 µs), and do not
// collide across up to 256 nodes. Time bounds of queries are ID bounds.
//
// Outside, an ID is that number and 8 zero bytes encrypted with AES under
// a server key, in base 32: XEP-0313 §3 wants UIDs that are
// unpredictable, and XEP-0359 §6 that nothing (not the time, not the
// size of the archive) can be read off them. Decrypting a UID that does
// not end in the zero bytes tells one this server did not hand out.

// idGen hands out IDs.
type idGen struct {
	clock microclock.Clock
	node  uint64
}

func (g *idGen) next(now time.Time) uint64 {
	if now.Before(epoch) {
		now = epoch // idAt's 0, then 1 µs more each time
	}
	return idAt(g.clock.Next(now)) | g.node
}

var epoch = time.Unix(0, 0)

// idAt is the smallest ID of time t (before 1970: 0).
func idAt(t time.Time) uint64 {
	us := t.UnixMicro()
	if us < 0 {
		return 0
	}
	return uint64(us) << 8
}

// stampOf is the archiving time of an ID.
func stampOf(id uint64) time.Time { return time.UnixMicro(int64(id >> 8)).UTC() }

var idEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// idCodec turns IDs into UIDs and back.
type idCodec struct{ block cipher.Block }

func newIDCodec(key []byte) (idCodec, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return idCodec{}, fmt.Errorf("mam: archive ID key: %w", err)
	}
	return idCodec{b}, nil
}

// encode returns the UID of id.
func (c idCodec) encode(id uint64) string {
	var b [aes.BlockSize]byte
	binary.BigEndian.PutUint64(b[:8], id)
	c.block.Encrypt(b[:], b[:])
	var out [26]byte // idEncoding.EncodedLen(aes.BlockSize)
	idEncoding.Encode(out[:], b[:])
	return string(out[:])
}

// decode returns the ID of a UID; ok is false for anything this server
// did not hand out.
func (c idCodec) decode(uid string) (uint64, bool) {
	if len(uid) != idEncoding.EncodedLen(aes.BlockSize) {
		return 0, false
	}
	var b [aes.BlockSize]byte
	if n, err := idEncoding.Decode(b[:], []byte(uid)); err != nil || n != aes.BlockSize {
		return 0, false
	}
	c.block.Decrypt(b[:], b[:])
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:]) == 0
}
