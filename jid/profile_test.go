package jid

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/text/secure/bidirule"
	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/bidi"
)

// TestLocalProfileMatchesUsernameCaseMapped shows that the localpart
// profile (localProfile plus the directionality rule of enforceLocal) is
// precis.UsernameCaseMapped except for the Bidi Rule on strings without
// right-to-left characters: on every localpart that UsernameCaseMapped
// accepts, the result is the same; the localparts only we accept are
// left-to-right strings that the Bidi Rule would reject.
func TestLocalProfileMatchesUsernameCaseMapped(t *testing.T) {
	var locals []string
	for _, tc := range append(append([]validCase{}, rfcValid...), ownValid...) {
		if at := strings.IndexByte(tc.in, '@'); at >= 0 && (strings.IndexByte(tc.in, '/') < 0 || at < strings.IndexByte(tc.in, '/')) {
			locals = append(locals, tc.in[:at])
		}
	}
	for _, tc := range append(append([]invalidCase{}, rfcInvalid...), ownInvalid...) {
		if at := strings.IndexByte(tc.in, '@'); at > 0 {
			locals = append(locals, tc.in[:at])
		}
	}
	locals = append(locals,
		"juliet", "JULIET", "Juliet", "\uFF2A\uFF55\uFF4C\uFF49\uFF45\uFF54", // fullwidth
		"\u03A3\u0391\u03A3", "\u00C9lise", "E\u0301lise", "stra\u00DFe", "\u0130stanbul",
		"\u0645\u0631\u062D\u0628\u0627", "\u05E9\u05DC\u05D5\u05DD", "\u05E9\u05DC\u05D5\u05DD1",
		"\u5F20\u4E09", "\u30A2\u30FB", "\u00E9\u00E8\u00EA", "x\u00E9", "\u00E9.x", "caf\u00E9",
		"a\u200Db", "\u2163", "\u00AA", "\u212B", "\u1E9E",
	)
	ours := 0
	for _, l := range locals {
		want, wantErr := precis.UsernameCaseMapped.String(l)
		got, gotErr := enforceLocal(l, false)
		if wantErr == nil {
			// RFC 7622 §3.3.1 excludes a few ASCII characters that
			// UsernameCaseMapped allows; the rest must agree.
			if strings.ContainsAny(want, excludedLocal) || len(want) > maxPart {
				if gotErr == nil {
					t.Errorf("%q: accepted although RFC 7622 excludes it", l)
				}
				continue
			}
			if gotErr != nil || got.s != want {
				t.Errorf("%q: ours %q, %v; UsernameCaseMapped %q", l, got.s, gotErr, want)
			}
			continue
		}
		if gotErr != nil {
			continue
		}
		// Only we accept it: then it must be the Bidi Rule, applied by
		// x/text to every string, that rejected it, and the string must be
		// left-to-right.
		ours++
		if !errors.Is(wantErr, bidirule.ErrInvalid) {
			t.Errorf("%q: accepted; UsernameCaseMapped rejects it for another reason: %v", l, wantErr)
		}
		if hasRTL(got.s) {
			t.Errorf("%q: accepted with right-to-left characters", l)
		}
	}
	if ours == 0 {
		t.Error("no localpart shows the difference (\"m\u00FCller.\" should)")
	}
	// The example of the difference.
	if _, err := precis.UsernameCaseMapped.String("m\u00FCller."); !errors.Is(err, bidirule.ErrInvalid) {
		t.Errorf("UsernameCaseMapped(\"m\u00FCller.\") = %v; the reason for the custom profile is gone", err)
	}
}

func hasRTL(s string) bool { return bidirule.DirectionString(s) != bidi.LeftToRight }
