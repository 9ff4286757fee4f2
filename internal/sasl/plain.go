package sasl

import (
	"context"
	"crypto/hmac"
	"strings"
	"unicode/utf8"
)

// stepPlain verifies a PLAIN message (RFC 4616 §2),
//
//	message = [authzid] UTF8NUL authcid UTF8NUL passwd
//
// by deriving the StoredKey of the password with the stored salt and
// iteration count (one PBKDF2 run) and comparing it in constant time.
func (c *Conversation) stepPlain(ctx context.Context, msg []byte) ([]byte, bool, error) {
	if !utf8.Valid(msg) {
		return nil, false, fail(MalformedRequest, "PLAIN message is not UTF-8", nil)
	}
	authzid, rest, ok1 := strings.Cut(string(msg), "\x00")
	authcid, passwd, ok2 := strings.Cut(rest, "\x00")
	if !ok1 || !ok2 || strings.Contains(passwd, "\x00") || passwd == "" {
		return nil, false, fail(MalformedRequest, "invalid PLAIN message", nil)
	}
	user, err := c.userJID(authcid)
	if err != nil {
		return nil, false, err
	}
	if err := checkAuthzID(authzid, user); err != nil {
		return nil, false, err
	}
	pw, err := preparePassword(passwd)
	if err != nil {
		// Independent of the account: nothing to hide.
		return nil, false, fail(NotAuthorized, "", err)
	}

	cred, unknown, err := c.credentials(ctx, user.Local())
	if err != nil {
		return nil, false, err
	}
	h := plainHashes[0]
	for _, hh := range plainHashes {
		if !cred.secret(hh).IsZero() {
			h = hh
			break
		}
	}
	sec, own, err := c.secret(&cred, h, user.Local())
	if err != nil {
		return nil, false, err
	}
	got, err := deriveSecret(h, pw, sec.Salt, sec.Iterations)
	if err != nil {
		return nil, false, fail(TemporaryAuthFailure, "", err)
	}
	match := hmac.Equal(got.StoredKey, sec.StoredKey)
	switch {
	case unknown:
		return nil, false, fail(NotAuthorized, "", ErrUnknownUser)
	case !own:
		return nil, false, fail(NotAuthorized, "", errNoSecret)
	case !match:
		return nil, false, fail(NotAuthorized, "", errWrongPassword)
	}
	c.user = user
	return nil, true, nil
}
