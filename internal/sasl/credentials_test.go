package sasl

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestCredentialsRFC5803 derives the RFC 5802 §5 secret and checks its text
// form against the example of RFC 5803 §4.
func TestCredentialsRFC5803(t *testing.T) {
	salt, _ := base64.StdEncoding.DecodeString("QSXCR+Q6sek8bf92")
	sec, err := deriveSecret(hashSHA1, "pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	text, err := Credentials{SHA1: sec}.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	const want = "SCRAM-SHA-1$4096:QSXCR+Q6sek8bf92$6dlGYMOdZcOPutkcNY8U2g7vK9Y=:D+CSWLOshSulAsxiupA+qs2/fTE="
	if string(text) != want {
		t.Errorf("MarshalText = %s, want %s", text, want)
	}
}

func TestCredentialsRoundTrip(t *testing.T) {
	c, err := NewCredentials("r0m30myr0m30", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hashes {
		s := c.secret(h)
		if len(s.Salt) != saltSize || s.Iterations != DefaultIterations || len(s.StoredKey) != h.size || len(s.ServerKey) != h.size {
			t.Errorf("%s: %+v", h.scheme, s)
		}
	}
	if bytes.Equal(c.SHA1.Salt, c.SHA256.Salt) {
		t.Error("salts are shared between hashes")
	}
	text, err := c.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Fields(string(text))); n != 3 {
		t.Errorf("%d secrets in %s", n, text)
	}
	var got Credentials
	if err := got.UnmarshalText(text); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("round trip: got %+v, want %+v", got, c)
	}

	// Through JSON, as a string.
	j, err := json.Marshal(map[string]Credentials{"c": c})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]Credentials
	if err := json.Unmarshal(j, &m); err != nil || !reflect.DeepEqual(m["c"], c) {
		t.Errorf("JSON round trip: %v", err)
	}

	// Partial credentials, in any order and spacing.
	fields := strings.Fields(string(text))
	partial := "  " + fields[2] + "\n\t" + fields[0] + " "
	got = Credentials{SHA256: c.SHA256}
	if err := got.UnmarshalText([]byte(partial)); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, Credentials{SHA1: c.SHA1, SHA512: c.SHA512}) {
		t.Errorf("partial: %+v", got)
	}

	// Zero credentials.
	if text, err := (Credentials{}).MarshalText(); err != nil || len(text) != 0 {
		t.Errorf("zero: %q, %v", text, err)
	}
	got = c
	if err := got.UnmarshalText(nil); err != nil || !reflect.DeepEqual(got, Credentials{}) {
		t.Errorf("empty: %+v, %v", got, err)
	}
}

func TestCredentialsUnmarshalErrors(t *testing.T) {
	const s1 = "SCRAM-SHA-1$4096:QSXCR+Q6sek8bf92$6dlGYMOdZcOPutkcNY8U2g7vK9Y=:D+CSWLOshSulAsxiupA+qs2/fTE="
	for _, text := range []string{
		"SCRAM-MD5$4096:QSXCR+Q6sek8bf92$6dlGYMOdZcOPutkcNY8U2g7vK9Y=:D+CSWLOshSulAsxiupA+qs2/fTE=",
		s1 + " " + s1,
		"SCRAM-SHA-1",
		"SCRAM-SHA-1$4096:QSXCR+Q6sek8bf92",
		"SCRAM-SHA-1$4096$6dlGYMOdZcOPutkcNY8U2g7vK9Y=:D+CSWLOshSulAsxiupA+qs2/fTE=",
		"SCRAM-SHA-1$4096:QSXCR+Q6sek8bf92$6dlGYMOdZcOPutkcNY8U2g7vK9Y=",
		"SCRAM-SHA-1$0:QSXCR+Q6sek8bf92$6dlGYMOdZcOPutkcNY8U2g7vK9Y=:D+CSWLOshSulAsxiupA+qs2/fTE=",
		"SCRAM-SHA-1$-1:QSXCR+Q6sek8bf92$6dlGYMOdZcOPutkcNY8U2g7vK9Y=:D+CSWLOshSulAsxiupA+qs2/fTE=",
		"SCRAM-SHA-1$x:QSXCR+Q6sek8bf92$6dlGYMOdZcOPutkcNY8U2g7vK9Y=:D+CSWLOshSulAsxiupA+qs2/fTE=",
		"SCRAM-SHA-1$99999999999:QSXCR+Q6sek8bf92$6dlGYMOdZcOPutkcNY8U2g7vK9Y=:D+CSWLOshSulAsxiupA+qs2/fTE=",
		"SCRAM-SHA-1$4096:$6dlGYMOdZcOPutkcNY8U2g7vK9Y=:D+CSWLOshSulAsxiupA+qs2/fTE=",
		"SCRAM-SHA-1$4096:***$6dlGYMOdZcOPutkcNY8U2g7vK9Y=:D+CSWLOshSulAsxiupA+qs2/fTE=",
		"SCRAM-SHA-256$4096:QSXCR+Q6sek8bf92$6dlGYMOdZcOPutkcNY8U2g7vK9Y=:D+CSWLOshSulAsxiupA+qs2/fTE=", // SHA-1 sized keys
	} {
		c := Credentials{SHA1: Secret{Iterations: 7}}
		if err := c.UnmarshalText([]byte(text)); err == nil {
			t.Errorf("%q accepted", text)
		} else if c.SHA1.Iterations != 7 {
			t.Errorf("%q: receiver modified on error", text)
		}
	}
	if _, err := (Credentials{SHA256: Secret{Salt: []byte("x"), Iterations: 1}}).MarshalText(); err == nil {
		t.Error("MarshalText accepts a secret without keys")
	}
}

func TestNewCredentialsErrors(t *testing.T) {
	for _, tt := range []struct {
		pass  string
		iters int
	}{
		{"", 0},
		{"\xff\xfe", 0},
		{"ctrl\x07", 0},
		{"ok", 4095},
		{"ok", -1},
	} {
		if _, err := NewCredentials(tt.pass, tt.iters); err == nil {
			t.Errorf("NewCredentials(%q, %d) succeeds", tt.pass, tt.iters)
		}
	}
	c, err := NewCredentials("ok", 5000)
	if err != nil || c.SHA512.Iterations != 5000 {
		t.Errorf("5000 iterations: %+v, %v", c.SHA512, err)
	}
}
