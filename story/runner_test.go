package story

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeTB records failures instead of ending the test; the methods the
// package does not call panic through the nil embedded interface.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	fatals   []string
	errors   []string
	cleanups []func()
}

func (f *fakeTB) Helper()      {}
func (f *fakeTB) Name() string { return "fake" }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fatals = append(f.fatals, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Logf(string, ...any) {}
func (f *fakeTB) Cleanup(fn func())   { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) runCleanups() {
	slices.Reverse(f.cleanups)
	for _, c := range f.cleanups {
		c()
	}
}
func (f *fakeTB) failures() []string { f.mu.Lock(); defer f.mu.Unlock(); return slices.Clone(f.fatals) }

func TestExpectFailureMessage(t *testing.T) {
	fs := newFakeServer(t)
	alice := MustConnect(t, fs, fs.addUser("alice"), Options{Name: "alice"})
	bob := connectShort(t, fs, fs.addUser("bob"), Options{Name: "bob", Timeout: 100 * time.Millisecond})
	alice.Send(Chat(bob, "one"))
	alice.Send(Message("", bob, "two & <three>"))
	// bob's 100 ms timeout is for the failures below; what does come is
	// waited for with a ceiling of its own.
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	if _, err := bob.WaitFor(ctx, IsChat("one")); err != nil {
		t.Fatal(err)
	}
	alice.Send(Chat(bob, "one"))
	waitQueued(t, bob, 2)

	ftb := &fakeTB{}
	bob.t = ftb
	el := bob.Expect(IsChat("never"), IsFrom(alice))
	if el != nil {
		t.Fatalf("Expect returned %s", el)
	}
	f := ftb.failures()
	if len(f) != 1 {
		t.Fatalf("failures: %q", f)
	}
	msg := f[0]
	t.Logf("the failure message reads:\n%s", msg)
	want := []*regexp.Regexp{
		regexp.MustCompile(`^story: bob \(bob@fake\.test/gen[0-9a-f]+\): expected a chat message with body "never" and from alice@fake\.test/gen[0-9a-f]+ within 100ms \(waiting from \+\d\.\d{3}s\): timed out\n`),
		regexp.MustCompile(`\n  received instead, 2 element\(s\), oldest first:\n`),
		regexp.MustCompile(`\n   1\. \[\+\d\.\d{3}s\] <message to='bob@fake\.test/gen[0-9a-f]+' from='alice@fake\.test/gen[0-9a-f]+'><body>two &amp; &lt;three&gt;</body></message>\n`),
		regexp.MustCompile(`\n   2\. \[\+\d\.\d{3}s\] <message to='bob@fake\.test/gen[0-9a-f]+' type='chat' from='alice@fake\.test/gen[0-9a-f]+'><body>one</body></message>$`),
	}
	for _, re := range want {
		if !re.MatchString(msg) {
			t.Errorf("the failure message does not match %s", re)
		}
	}

	// The queue is left as it was.
	bob.t = t
	if got := len(bob.Pending()); got != 2 {
		t.Errorf("%d queued after the failure, want 2", got)
	}
	bob.Collect(2)

	// Empty queue.
	bob.t = ftb
	bob.Expect(IsChat("never"))
	if f := ftb.failures(); len(f) != 2 || !strings.HasSuffix(f[1], "received instead: nothing (the queue is empty)") {
		t.Errorf("empty-queue failure: %q", f[len(f)-1])
	}
	// Collect and ExpectNothing fail through the same path.
	bob.Collect(1)
	alice.Send(Chat(bob, "surprise"))
	waitQueued(t, bob, 1)
	bob.ExpectNothing(time.Second)
	f = ftb.failures()
	if len(f) != 4 || !strings.Contains(f[2], "expected 1 elements within 100ms (waiting from +") ||
		!strings.Contains(f[3], "expected nothing matching any element for 1s, but received at +") {
		t.Errorf("failures: %q", f)
	}
	bob.t = t
}

func TestExpectWithoutTBPanics(t *testing.T) {
	fs := newFakeServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	c, err := Connect(ctx, nil, fs, fs.addUser("alice"), Options{Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "expected any element") {
			t.Errorf("recovered %v", r)
		}
	}()
	c.Expect()
}

func TestRunnerSpecs(t *testing.T) {
	specs, err := storySpecs(Users{"bob": 2, "alice": 1, "carol": 1}, func(alice, bob1, bob2, carol *Client) {})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range specs {
		got = append(got, fmt.Sprintf("%s:%s/%d", s.label, s.user, s.resource))
	}
	if want := []string{"alice:alice/1", "bob1:bob/1", "bob2:bob/2", "carol:carol/1"}; !slices.Equal(got, want) {
		t.Errorf("specs %v, want %v", got, want)
	}

	bad := []struct {
		users Users
		fn    any
		want  string
	}{
		{Users{"alice": 1, "bob": 2}, func(a, b *Client) {},
			`the story function is func(*story.Client, *story.Client), but Users{"alice": 1, "bob": 2} gives 3 clients (users in alphabetical order, resources in order); want func(alice, bob1, bob2 *story.Client)`},
		{Users{"alice": 1}, func(a *Client) error { return nil },
			`the story function is func(*story.Client) error, but Users{"alice": 1} gives 1 clients`},
		{Users{"alice": 1, "bob": 1}, func(a *Client, b string) {},
			`parameter 2 of the story function (bob) is string, not *story.Client; want func(alice, bob *story.Client)`},
		{Users{"alice": 1}, "not a func", `the story is a string, not a function; want func(alice *story.Client)`},
		{Users{"alice": 1}, nil, `the story function is nil`},
		{Users{"alice": 1}, func(a ...*Client) {}, `the story function is func(...*story.Client)`},
		{Users{"alice": 0}, func() {}, `user "alice" has 0 resources`},
		{Users{"Alice": 1}, func(a *Client) {}, `user name "Alice": use lowercase letters`},
		{Users{}, func() {}, `no users`},
	}
	for _, b := range bad {
		_, err := storySpecs(b.users, b.fn)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("storySpecs(%v, %T):\n got %v\nwant %s", b.users, b.fn, err, b.want)
		}
	}
}

func TestRunBadSignatureFailsBeforeCreatingUsers(t *testing.T) {
	fs := newFakeServer(t)
	ftb := &fakeTB{}
	called := false
	Run(ftb, fs, Users{"alice": 1, "bob": 1}, func(alice *Client) { called = true })
	ftb.runCleanups()
	if f := ftb.failures(); len(f) != 1 || !strings.Contains(f[0], "want func(alice, bob *story.Client)") {
		t.Errorf("failures %q", f)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if called || len(fs.users) != 0 {
		t.Errorf("the story ran (%v) or users were created (%v)", called, fs.users)
	}
}

func TestRunAgainstFakeServer(t *testing.T) {
	fs := newFakeServer(t)
	var names []string
	t.Run("story", func(t *testing.T) {
		Run(t, fs, Users{"bob": 2, "alice": 1}, func(alice, bob1, bob2 *Client) {
			for _, c := range []*Client{alice, bob1, bob2} {
				names = append(names, c.Name()+"="+c.JID().String())
				if q := c.Pending(); len(q) != 0 {
					t.Errorf("%s starts with %d queued elements", c.Name(), len(q))
				}
			}
			alice.Send(Chat(bob2, "hi bob2"))
			bob2.Expect(IsChat("hi bob2"), IsFrom(alice))
			alice.Send(Chat(bob1.Bare(), "hi both"))
			bob1.Expect(IsChat("hi both"))
			bob2.Expect(IsChat("hi both"))
			bob1.ExpectNothing(20 * time.Millisecond)
		})
	})
	re := regexp.MustCompile(`^(alice=alice-[0-9a-f]{8}@fake\.test/res1|bob1=bob-[0-9a-f]{8}@fake\.test/res1|bob2=bob-[0-9a-f]{8}@fake\.test/res2)$`)
	for _, n := range names {
		if !re.MatchString(n) {
			t.Errorf("client %s", n)
		}
	}
	if len(names) != 3 {
		t.Errorf("clients %v", names)
	}
	// The cleanup closed the sessions and removed the users.
	if n := fs.openConns(10 * time.Second); n != 0 {
		t.Errorf("%d connections left open", n)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if len(fs.users) != 0 {
		t.Errorf("users left: %v", fs.users)
	}
}

func TestRunWithOptions(t *testing.T) {
	fs := newFakeServer(t)
	RunWith(t, fs, Users{"alice": 1}, Options{Transport: DirectTLS, Resource: "phone", NoPresence: true, StreamManagement: true, Mechanism: ScramSHA1},
		func(alice *Client) {
			if alice.JID().Resource() != "phone1" || !alice.SMEnabled() || alice.Mechanism() != ScramSHA1 {
				t.Errorf("client %s sm=%v mech=%s", alice.JID(), alice.SMEnabled(), alice.Mechanism())
			}
		})
}

func TestNewAccount(t *testing.T) {
	fs := newFakeServer(t)
	var local string
	t.Run("inner", func(t *testing.T) {
		a := NewAccount(t, fs, "carol")
		local = a.Localpart
		if !regexp.MustCompile(`^carol-[0-9a-f]{8}$`).MatchString(a.Localpart) || a.JID.String() != a.Localpart+"@fake.test" || len(a.Password) < 16 {
			t.Errorf("account %+v", a)
		}
	})
	if !slices.Contains(fs.events(), "removed "+local) {
		t.Errorf("the account was not removed: %q", fs.events())
	}
}

// waitQueued waits until c has n elements queued, for a client whose
// own timeout is too short for what it waits for. It wakes up when the
// queue changes (Client.changed), not by polling.
func waitQueued(t *testing.T, c *Client, n int) {
	t.Helper()
	timeout := time.After(DefaultTimeout)
	for {
		c.mu.Lock()
		got, ch := len(c.queue), c.changed
		c.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("%d queued, want %d", got, n)
		}
	}
}

// connectShort connects a client whose expectations time out quickly,
// giving the connection itself the default time: a loaded machine may
// take longer than opts.Timeout for the TLS and SCRAM exchanges.
func connectShort(t *testing.T, srv Server, acct Account, opts Options) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	c, err := Connect(ctx, t, srv, acct, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
