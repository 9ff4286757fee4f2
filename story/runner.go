package story

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/jid"
)

// Users says which users a story needs: user name → number of resources
// (connected clients) of that user. Names are labels ("alice", "bob"): each
// story creates fresh accounts named after them with a random suffix.
type Users map[string]int

// setupTimeout bounds creating the users and connecting the clients of a
// story, and removing the users afterwards.
const setupTimeout = 60 * time.Second

// Run runs a story: it creates one fresh account per user, connects the
// clients, calls fn with them, and on cleanup closes the clients and
// removes the accounts. It is RunWith with the zero Options.
//
// fn must be a func taking one *Client per resource and returning nothing.
// Its parameters come in the ALPHABETICAL order of the user names, and for
// a user with several resources in resource order, so
//
//	story.Run(t, srv, story.Users{"bob": 2, "alice": 1}, func(alice, bob1, bob2 *story.Client) { … })
//
// gets alice's client, then bob's first and second. A mismatch fails the
// test before anything is created.
//
// Accounts are named "<name>-<8 random hex digits>" with random passwords,
// so stories can run in parallel (t.Parallel) against one server. Clients
// connect in parallel; with initial presence on (the default), each then
// sends its presence in parameter order and the runner takes off the
// queues the presence exchanged among a user's own resources (the
// reflection, the broadcast to the resources already available, RFC 6121
// §4.2.2, and their presence sent to the new resource): every client
// starts the story with an empty queue, and users are not subscribed to
// each other. Resources are named "res1", "res2", … (or
// Options.Resource+"1", … when set); clients are named "alice", "bob1",
// "bob2" in failure messages (a user with one resource has no number).
func Run(t testing.TB, srv Server, users Users, fn any) {
	t.Helper()
	RunWith(t, srv, users, Options{}, fn)
}

// RunWith is Run with options for every client (transport, mechanism,
// stream management, presence, timeout).
func RunWith(t testing.TB, srv Server, users Users, opts Options, fn any) {
	t.Helper()
	specs, err := storySpecs(users, fn)
	if err != nil {
		t.Fatalf("story: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()

	// Create the accounts in parallel; each is removed on cleanup, after
	// the clients are closed (cleanups run last registered first).
	names := userNames(users)
	accounts := make(map[string]Account, len(names))
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Go(func() {
			a, err := createAccount(ctx, srv, name)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			accounts[name] = a
		})
	}
	wg.Wait()
	for _, name := range names {
		if a, ok := accounts[name]; ok {
			t.Cleanup(func() { removeAccount(t, srv, a) })
		}
	}
	if len(errs) > 0 {
		t.Fatalf("story: creating users: %v", errors.Join(errs...))
		return
	}

	// Connect every client in parallel, without presence.
	clients := make([]*Client, len(specs))
	errs = errs[:0]
	for i, sp := range specs {
		wg.Go(func() {
			o := opts
			o.NoPresence = true
			o.Name = sp.label
			prefix := opts.Resource
			if prefix == "" {
				prefix = "res"
			}
			o.Resource = prefix + strconv.Itoa(sp.resource)
			c, err := Connect(ctx, nil, srv, accounts[sp.user], o)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", sp.label, err))
				return
			}
			clients[i] = c
		})
	}
	wg.Wait()
	// Close the clients on cleanup; they were connected without a
	// testing.TB, so give it to them now for the Expect family.
	for _, c := range clients {
		if c != nil {
			c.t = t
		}
	}
	t.Cleanup(func() { closeAll(t, clients) })
	if len(errs) > 0 {
		t.Fatalf("story: connecting clients: %v", errors.Join(errs...))
		return
	}

	if !opts.NoPresence {
		if err := presenceRound(ctx, specs, clients); err != nil {
			t.Fatalf("story: initial presence: %v", err)
			return
		}
	}

	args := make([]reflect.Value, len(clients))
	for i, c := range clients {
		args[i] = reflect.ValueOf(c)
	}
	reflect.ValueOf(fn).Call(args)
}

// presenceRound sends initial presence from each client in order and
// takes off the queues what that makes the server send to the user's own
// resources: the reflection to the sender and the copies to the user's
// resources already available (RFC 6121 §4.2.2), and the presence of those
// resources to the new one (which Prosody and ejabberd send, as a reply to
// the implicit probe of the user's own bare JID).
func presenceRound(ctx context.Context, specs []clientSpec, clients []*Client) error {
	for i, c := range clients {
		if err := c.initialPresence(ctx); err != nil {
			return err
		}
		for j := range i {
			if specs[j].user != specs[i].user {
				continue
			}
			if _, err := clients[j].WaitFor(ctx, IsPresence("", c.JID())); err != nil {
				return fmt.Errorf("%s did not get the presence of %s: %w", specs[j].label, specs[i].label, err)
			}
			if _, err := c.WaitFor(ctx, IsPresence("", clients[j].JID())); err != nil {
				return fmt.Errorf("%s did not get the presence of %s, available before it: %w", specs[i].label, specs[j].label, err)
			}
		}
	}
	return nil
}

func closeAll(t testing.TB, clients []*Client) {
	var wg sync.WaitGroup
	for _, c := range clients {
		if c == nil {
			continue
		}
		wg.Go(func() {
			if err := c.Close(); err != nil {
				t.Logf("%v", err)
			}
		})
	}
	wg.Wait()
}

// clientSpec is one parameter of a story function.
type clientSpec struct {
	user     string // user name ("bob")
	resource int    // 1-based
	label    string // "bob2", or "alice" for a single resource
}

func userNames(users Users) []string {
	names := make([]string, 0, len(users))
	for n := range users {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

var clientType = reflect.TypeFor[*Client]()

// storySpecs checks users and the signature of fn and returns the clients
// fn takes, in order.
func storySpecs(users Users, fn any) ([]clientSpec, error) {
	if len(users) == 0 {
		return nil, errors.New("no users")
	}
	names := userNames(users)
	var specs []clientSpec
	for _, n := range names {
		if err := checkUserName(n); err != nil {
			return nil, err
		}
		k := users[n]
		if k < 1 {
			return nil, fmt.Errorf("user %q has %d resources; it needs at least 1", n, k)
		}
		for r := 1; r <= k; r++ {
			label := n
			if k > 1 {
				label = n + strconv.Itoa(r)
			}
			specs = append(specs, clientSpec{user: n, resource: r, label: label})
		}
	}
	want := wantSignature(specs)
	if fn == nil {
		return nil, fmt.Errorf("the story function is nil; want %s", want)
	}
	ft := reflect.TypeOf(fn)
	if ft.Kind() != reflect.Func {
		return nil, fmt.Errorf("the story is a %s, not a function; want %s", ft, want)
	}
	if ft.IsVariadic() || ft.NumIn() != len(specs) || ft.NumOut() != 0 {
		return nil, fmt.Errorf("the story function is %s, but %s gives %d clients (users in alphabetical order, resources in order); want %s",
			ft, usersString(users), len(specs), want)
	}
	for i := range ft.NumIn() {
		if ft.In(i) != clientType {
			return nil, fmt.Errorf("parameter %d of the story function (%s) is %s, not *story.Client; want %s",
				i+1, specs[i].label, ft.In(i), want)
		}
	}
	return specs, nil
}

func wantSignature(specs []clientSpec) string {
	labels := make([]string, len(specs))
	for i, s := range specs {
		labels[i] = s.label
	}
	return "func(" + strings.Join(labels, ", ") + " *story.Client)"
}

func usersString(users Users) string {
	names := userNames(users)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%q: %d", n, users[n])
	}
	return "Users{" + strings.Join(parts, ", ") + "}"
}

// checkUserName accepts what makes a readable localpart prefix: lowercase
// ASCII letters, digits, '-', '_' and '.'.
func checkUserName(n string) error {
	if n == "" {
		return errors.New("empty user name")
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("user name %q: use lowercase letters, digits, '-', '_' and '.'", n)
		}
	}
	return nil
}

// createAccount creates a fresh account "<name>-<random>" on srv.
func createAccount(ctx context.Context, srv Server, name string) (Account, error) {
	local := name + "-" + randomHex(4)
	pass := randomHex(12)
	j, err := jid.New(local, srv.Domain(), "")
	if err != nil {
		return Account{}, fmt.Errorf("user %s: %w", name, err)
	}
	if err := srv.CreateUser(ctx, local, pass); err != nil {
		return Account{}, fmt.Errorf("create user %s: %w", j, err)
	}
	return Account{Localpart: local, Password: pass, JID: j}, nil
}

func removeAccount(t testing.TB, srv Server, a Account) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if err := srv.RemoveUser(ctx, a.Localpart); err != nil {
		t.Errorf("story: remove user %s: %v", a.JID, err)
	}
}

// NewAccount creates a fresh account named after name (see Run) and
// removes it when the test ends. Use it with Connect for stories that
// manage their connections themselves (reconnecting, offline delivery).
func NewAccount(t testing.TB, srv Server, name string) Account {
	t.Helper()
	if err := checkUserName(name); err != nil {
		t.Fatalf("story: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	a, err := createAccount(ctx, srv, name)
	if err != nil {
		t.Fatalf("story: %v", err)
	}
	t.Cleanup(func() { removeAccount(t, srv, a) })
	return a
}

// MustConnect is Connect for tests: it fails the test if the client cannot
// connect. The client is closed when the test ends.
func MustConnect(t testing.TB, srv Server, acct Account, opts Options) *Client {
	t.Helper()
	c, err := Connect(context.Background(), t, srv, acct, opts)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return c
}
