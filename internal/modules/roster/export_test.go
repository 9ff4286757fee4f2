package roster

// For the stories of package roster_test: the tables of RFC 6121
// Appendix A as transcribed in states_test.go.

// AppendixA2 returns the row of Appendix A.2 for an outbound stanza of
// type typ in state s: whether it is routed, and the new state.
func AppendixA2(typ string, s State) (routed bool, next State) { return lookup(appendixA2, typ, s) }

// AppendixA3 returns the row of Appendix A.3 for an inbound stanza.
func AppendixA3(typ string, s State) (delivered bool, next State) { return lookup(appendixA3, typ, s) }

func lookup(table map[string][]tableRow, typ string, s State) (bool, State) {
	for _, r := range table[typ] {
		if r.from == s {
			return r.forward, r.next
		}
	}
	panic("no row for " + typ + " in " + s.String())
}
