package load

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// Scenario is what users do once online. Adding one is one file with an
// init function calling Register.
type Scenario struct {
	Name string
	Doc  string // one line, for the command's help
	// Sends says whether the scenario has send slots (paced at
	// Config.Rate per user); login has none.
	Sends bool
	// New returns the scenario's state for one run.
	New func(r *Run) Behaviour
}

// Behaviour is a scenario's state during one run.
type Behaviour interface {
	// Setup runs once every user of this process is online, before the
	// sending phase (creating rooms, say).
	Setup(ctx context.Context) error
	// Act is one send slot of user u: send a stamped stanza, query, or
	// reconnect. It runs on a pacing goroutine and must not block long:
	// anything that waits for an answer goes to its own goroutine
	// (Run.Go).
	Act(ctx context.Context, u *User)
	// Receive sees every element received by u that is not a stamped
	// stanza or an answer to an IQ of Conn.IQ.
	Receive(u *User, el *xmlstream.Element)
}

// Nop is a Behaviour that does nothing, to embed.
type Nop struct{}

func (Nop) Setup(context.Context) error       { return nil }
func (Nop) Act(context.Context, *User)        {}
func (Nop) Receive(*User, *xmlstream.Element) {}

var (
	registryMu sync.Mutex
	registry   = map[string]Scenario{}
)

// Register adds a scenario; a duplicate name panics (it is a programming
// error, found at start).
func Register(s Scenario) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[s.Name]; dup {
		panic(fmt.Sprintf("load: scenario %q registered twice", s.Name))
	}
	if s.New == nil {
		panic(fmt.Sprintf("load: scenario %q has no New", s.Name))
	}
	registry[s.Name] = s
}

// Lookup returns the scenario called name.
func Lookup(name string) (Scenario, bool) {
	registryMu.Lock()
	defer registryMu.Unlock()
	s, ok := registry[name]
	return s, ok
}

// Names lists the registered scenarios, sorted.
func Names() []string {
	registryMu.Lock()
	defer registryMu.Unlock()
	var out []string
	for n := range registry {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
