package load

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/load/metrics"
	"github.com/meerkat-xmpp/meerkat/internal/load/procfs"
	"github.com/meerkat-xmpp/meerkat/internal/load/report"
	"github.com/meerkat-xmpp/meerkat/internal/load/xmppc"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// User is one simulated user of this process.
type User struct {
	Index int    // in the whole population
	Name  string // local part
	Pass  string
	Bare  string // bare JID
	// Rand is for Act only (each user is acted for by one goroutine).
	Rand  *rand.Rand
	Peers []int // Config.Peers other users of this process, by index

	conn atomic.Pointer[xmppc.Conn]
	seq  atomic.Uint64
}

// Conn returns the user's connection, nil while offline.
func (u *User) Conn() *xmppc.Conn { return u.conn.Load() }

// NextID returns a fresh stanza id.
func (u *User) NextID() string { return fmt.Sprintf("%d-%d", u.Index, u.seq.Add(1)) }

// Run is one load process's run in progress.
type Run struct {
	Cfg *Config
	Rec *metrics.Recorder

	users     []*User // Cfg.From … Cfg.To-1
	behaviour Behaviour

	readers sync.WaitGroup // one per connection
	tasks   sync.WaitGroup // Go
	closing atomic.Bool

	expected atomic.Int64 // stamped stanza deliveries expected
	bounced  atomic.Int64 // stamped stanzas returned as errors

	kindsMu sync.Mutex
	kinds   map[string]int64
}

// User returns the user with population index i, nil if it is not this
// process's.
func (r *Run) User(i int) *User {
	if i < r.Cfg.From || i >= r.Cfg.To {
		return nil
	}
	return r.users[i-r.Cfg.From]
}

// Users returns this process's users.
func (r *Run) Users() []*User { return r.users }

// JID returns the bare JID of user i.
func (r *Run) JID(i int) string { return r.Cfg.UserName(i) + "@" + r.Cfg.Domain }

// Expect notes that n deliveries of a stamped stanza are expected.
func (r *Run) Expect(n int) { r.expected.Add(int64(n)) }

// Send sends b from u, counting a failure as an error; it reports
// whether b was written.
func (r *Run) Send(u *User, b []byte) bool {
	c := u.Conn()
	if c == nil {
		return false
	}
	if err := c.Send(b); err != nil {
		r.Fail("send", err)
		return false
	}
	return true
}

// SendStamped sends a stamped stanza from u that n recipients should
// receive, and counts it.
func (r *Run) SendStamped(u *User, b []byte, n int) {
	if r.Send(u, b) {
		r.Rec.Sent.Add(1)
		r.Expect(n)
	}
}

// SendStampedTo sends a stamped stanza from u to the user with index
// peer (through the baseline relay, a frame for it) and counts it.
func (r *Run) SendStampedTo(u *User, peer int, b []byte) {
	c := u.Conn()
	if c == nil {
		return
	}
	if err := c.SendTo(peer, b); err != nil {
		r.Fail("send", err)
		return
	}
	r.Rec.Sent.Add(1)
	r.Expect(1)
}

// Fail counts an error of kind what.
func (r *Run) Fail(what string, err error) {
	r.Rec.Errors.Add(1)
	r.count(what, err)
}

func (r *Run) count(what string, err error) {
	k := what
	if err != nil {
		k += ": " + shorten(err.Error())
	}
	r.kindsMu.Lock()
	r.kinds[k]++
	n := r.kinds[k]
	r.kindsMu.Unlock()
	if n == 1 {
		r.Cfg.Log.Warn("load: first error of its kind", "kind", k)
	}
}

// shorten keeps the end of an error chain (the cause), without the
// per-user prefixes, so that errors group by kind.
func shorten(s string) string {
	if i := strings.LastIndex(s, ": "); i >= 0 && len(s)-i < 120 {
		s = s[i+2:]
	}
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

// Go runs fn on its own goroutine; the run waits for it before it ends.
func (r *Run) Go(fn func()) {
	r.tasks.Add(1)
	go func() {
		defer r.tasks.Done()
		fn()
	}()
}

// Execute runs a scenario as cfg says and returns its result.
func Execute(ctx context.Context, cfg Config) (*metrics.Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	sc, _ := Lookup(cfg.Scenario)
	r := &Run{Cfg: &cfg, Rec: metrics.NewRecorder(), kinds: map[string]int64{}}
	for i := cfg.From; i < cfg.To; i++ {
		r.users = append(r.users, &User{
			Index: i, Name: cfg.UserName(i), Pass: cfg.Password(i), Bare: r.JID(i),
			Rand: rand.New(rand.NewPCG(uint64(i), 0x10ad)),
		})
	}
	r.pickPeers()
	if cfg.ServerPID > 0 {
		pid := cfg.ServerPID
		if _, err := procfs.Read(pid); err != nil {
			return nil, fmt.Errorf("load: server pid: %w", err)
		}
		r.Rec.Proc = func() (metrics.ProcSample, bool) {
			s, err := procfs.Read(pid)
			return metrics.ProcSample{CPUSeconds: s.CPUSeconds, RSSBytes: s.RSSBytes}, err == nil
		}
	}
	res := &metrics.Result{
		Version: metrics.ResultVersion, Label: cfg.Label, Scenario: cfg.Scenario, Target: cfg.Addr,
		Domain: cfg.Domain, Transport: cfg.Transport, Mechanism: cfg.Mechanism,
		Users: cfg.Users, First: cfg.From, Count: cfg.To - cfg.From, Processes: 1,
		ServerPID: cfg.ServerPID, Options: cfg.describe(),
	}
	// The machine's load and the load tool's own CPU, to tell a busy
	// machine or a saturated client from a slow server when reading.
	res.Options["loadavg_start"] = loadavg()
	self0, _ := procfs.Read(os.Getpid())
	r.behaviour = sc.New(r)
	if cfg.Started != nil {
		cfg.Started(r.Rec)
	}

	if err := r.provision(ctx); err != nil {
		return nil, err
	}

	// The clock: one sample a second, and the progress line.
	tickCtx, stopTicks := context.WithCancel(context.Background())
	ticks := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(ticks)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case now := <-t.C:
				s := r.Rec.Tick(now)
				if cfg.Progress != nil {
					cfg.Progress(progressLine(now.Sub(start), s, len(r.users), r.Rec))
				}
			case <-tickCtx.Done():
				return
			}
		}
	}()
	res.Start = start

	var base int64
	if p := r.Rec.Proc; p != nil {
		if s, ok := p(); ok {
			base = s.RSSBytes
		}
	}
	res.LoginStart = time.Now()
	r.loginAll(ctx)
	res.LoginEnd = time.Now()
	cfg.Log.Info("load: logged in", "users", r.Rec.Logins.Load(), "errors", r.Rec.LoginErrors.Load(), "seconds", res.LoginEnd.Sub(res.LoginStart).Seconds())

	var runErr error
	if ctx.Err() == nil {
		if !sc.Sends {
			r.stayOnline(ctx, res, base)
		} else if err := r.behaviour.Setup(ctx); err != nil {
			runErr = fmt.Errorf("load: %s setup: %w", cfg.Scenario, err)
		} else {
			res.Steps = r.send(ctx)
			r.drain(ctx)
		}
	}
	r.shutdown()
	stopTicks()
	<-ticks
	r.Rec.Tick(time.Now())
	res.End = time.Now()
	res.Options["loadavg_end"] = loadavg()
	if self1, err := procfs.Read(os.Getpid()); err == nil {
		res.Options["load_tool_cpu_s"] = fmt.Sprintf("%.1f", self1.CPUSeconds-self0.CPUSeconds)
	}
	if t := r.expected.Load() - r.Rec.Received.Load() - r.Rec.Delayed.Load() - r.bounced.Load(); t > 0 {
		r.Rec.Timeouts.Add(t)
	}
	if err := r.Rec.Snapshot(res); err != nil {
		return nil, err
	}
	r.kindsMu.Lock()
	if len(r.kinds) > 0 {
		res.ErrorKinds = r.kinds
	}
	r.kindsMu.Unlock()
	return res, runErr
}

// loadavg returns the 1, 5 and 15 minute load averages of the machine
// (proc(5): /proc/loadavg), "" if unknown.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// describe lists the settings that matter for reading a result.
func (c *Config) describe() map[string]string {
	o := map[string]string{
		"ramp_rate": fmt.Sprint(c.RampRate), "concurrency": fmt.Sprint(c.Concurrency),
		"sources": fmt.Sprint(c.Sources), "duration": c.Duration.String(), "provision": c.Provision,
		"sm": fmt.Sprint(c.SM),
	}
	if sc, _ := Lookup(c.Scenario); sc.Sends {
		o["rate_per_user"] = fmt.Sprint(c.Rate)
		o["peers"] = fmt.Sprint(c.Peers)
		o["body_bytes"] = fmt.Sprint(c.BodyBytes)
		if len(c.Steps) > 0 {
			o["steps"] = fmt.Sprint(c.Steps)
			o["step_duration"] = c.StepDuration.String()
		}
	}
	switch c.Scenario {
	case "muc-light":
		o["room_size"] = fmt.Sprint(c.RoomSize)
		o["muc_service"] = c.MUCService
	case "mam":
		o["mam_share"] = fmt.Sprint(c.MAMShare)
	case "presence":
		o["churn"] = c.Churn.String()
	}
	return o
}

// pickPeers gives every user Config.Peers distinct others of this
// process, at random but the same for the same range.
func (r *Run) pickPeers() {
	n := len(r.users)
	k := min(r.Cfg.Peers, n-1)
	for _, u := range r.users {
		seen := map[int]bool{u.Index: true}
		for len(u.Peers) < k {
			p := r.Cfg.From + u.Rand.IntN(n)
			if !seen[p] {
				seen[p] = true
				u.Peers = append(u.Peers, p)
			}
		}
	}
}

// provision makes the users exist.
func (r *Run) provision(ctx context.Context) error {
	cfg := r.Cfg
	var create func(ctx context.Context, u *User) error
	switch {
	case cfg.Transport == xmppc.Relay:
		return nil // the relay has no accounts
	case cfg.ProvisionFunc != nil:
		create = func(ctx context.Context, u *User) error { return cfg.ProvisionFunc(ctx, u.Name, u.Pass) }
	case cfg.Provision == "register":
		o := cfg.options()
		// From the default source address: servers exempt 127.0.0.1 from
		// their registration throttles (Prosody's mod_register_limits).
		create = func(ctx context.Context, u *User) error { return xmppc.Register(ctx, o, u.Name, u.Pass) }
	case cfg.Provision == "cmd":
		create = func(ctx context.Context, u *User) error {
			c := strings.NewReplacer("{user}", u.Name, "{domain}", cfg.Domain, "{jid}", u.Bare, "{password}", u.Pass).Replace(cfg.ProvisionCmd)
			cmd := exec.CommandContext(ctx, "sh", "-c", c)
			cmd.Stdin = strings.NewReader(u.Pass + "\n")
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("%s: %w: %s", c, err, strings.TrimSpace(string(out)))
			}
			return nil
		}
	default:
		return nil
	}
	started := time.Now()
	par := 16
	if cfg.Provision == "cmd" && cfg.ProvisionFunc == nil {
		par = runtime.NumCPU() * 2
	}
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	var failed atomic.Int64
	var first atomic.Value
	for _, u := range r.users {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := create(ctx, u); err != nil {
				failed.Add(1)
				first.CompareAndSwap(nil, err)
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("load: provisioning failed for %d users, first: %w", n, first.Load().(error))
	}
	cfg.Log.Info("load: users provisioned", "users", len(r.users), "how", cfg.Provision, "seconds", time.Since(started).Seconds())
	return nil
}

// loginAll logs every user in, RampRate per second at most and
// Concurrency at a time, and returns when every attempt has ended.
func (r *Run) loginAll(ctx context.Context) {
	sem := make(chan struct{}, r.Cfg.Concurrency)
	var wg sync.WaitGroup
	p := NewPacer(time.Now(), r.Cfg.RampRate)
	for i, u := range r.users {
		if _, ok := p.Wait(ctx, int64(i)); !ok {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			r.login(ctx, u)
		}()
	}
	wg.Wait()
}

// login connects u and starts its reader; failures are counted.
func (r *Run) login(ctx context.Context, u *User) {
	o := r.Cfg.options()
	o.Source = r.Cfg.source(u.Index)
	o.RelayID = uint32(u.Index)
	c, t, err := xmppc.Dial(ctx, o, u.Name, u.Pass)
	if err != nil {
		if ctx.Err() == nil {
			r.Rec.LoginErrors.Add(1)
			r.count("login", err)
		}
		return
	}
	r.Rec.Record(metrics.HistConnect, u.Index, t.Connect)
	r.Rec.Record(metrics.HistLogin, u.Index, t.Login)
	r.Rec.Logins.Add(1)
	r.Rec.Connected.Add(1)
	u.conn.Store(c)
	r.readers.Add(1)
	go func() {
		defer r.readers.Done()
		err := c.Run(func(el *xmlstream.Element, at time.Time) { r.receive(u, c, el, at) })
		r.Rec.Connected.Add(-1)
		u.conn.CompareAndSwap(c, nil)
		if err != nil && !r.closing.Load() {
			r.Fail("connection lost", err)
		}
	}()
}

// Reconnect takes u offline at once (its send slots are skipped) and, on
// its own goroutine, closes its connection and logs it in again: the
// presence scenario's churn. A user already reconnecting is left alone.
func (r *Run) Reconnect(ctx context.Context, u *User) {
	c := u.conn.Swap(nil)
	if c == nil {
		return
	}
	r.Go(func() {
		c.Close()
		r.login(ctx, u)
	})
}

// receive handles one element received by u.
func (r *Run) receive(u *User, c *xmppc.Conn, el *xmlstream.Element, at time.Time) {
	switch el.Name {
	case "message", "presence":
		sent, stamped, delayed := Stamp(el)
		if el.Attr("type") == "error" {
			if stamped {
				r.bounced.Add(1)
			}
			r.Rec.Errors.Add(1)
			r.count(el.Name+" error", errors.New(xmppc.ErrorCondition(el)))
			return
		}
		if stamped {
			if delayed {
				r.Rec.Delayed.Add(1)
			} else {
				r.Rec.Received.Add(1)
				r.Rec.Record(metrics.HistTTD, u.Index, at.Sub(sent))
			}
			return
		}
	case "iq":
		// A server's own IQs (XEP-0199 pings): pong, or refuse.
		switch el.Attr("type") {
		case "get", "set":
			id := string(xmlstream.AppendEscapedAttr(nil, el.Attr("id")))
			to := string(xmlstream.AppendEscapedAttr(nil, el.Attr("from")))
			if el.Child("ping", "urn:xmpp:ping") != nil {
				c.Send([]byte("<iq xmlns='jabber:client' type='result' id='" + id + "' to='" + to + "'/>"))
			} else {
				c.Send([]byte("<iq xmlns='jabber:client' type='error' id='" + id + "' to='" + to + "'><error type='cancel'><service-unavailable xmlns='" + stanza.NSStanzaErrors + "'/></error></iq>"))
			}
			return
		}
	}
	r.behaviour.Receive(u, el)
}

// stayOnline is the login scenario's phase: sessions stay idle; the
// server's memory is sampled once they have settled.
func (r *Run) stayOnline(ctx context.Context, res *metrics.Result, base int64) {
	end := time.Now().Add(r.Cfg.Duration)
	if !sleepCtx(ctx, min(r.Cfg.Settle, r.Cfg.Duration)) {
		return
	}
	if p := r.Rec.Proc; p != nil {
		if s, ok := p(); ok {
			res.Milestones = append(res.Milestones, metrics.Milestone{
				Sessions: int(r.Rec.Connected.Load()), At: time.Now().Unix(), RSS: s.RSSBytes, BaseRSS: base,
			})
		}
	}
	sleepCtx(ctx, time.Until(end))
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// send runs the sending phase: one phase at Rate for Duration, or one per
// step. Users are spread over pacing goroutines, each with a share of the
// rate.
func (r *Run) send(ctx context.Context) []metrics.Step {
	type phase struct {
		rate float64
		dur  time.Duration
	}
	phases := []phase{{r.Cfg.Rate, r.Cfg.Duration}}
	if len(r.Cfg.Steps) > 0 {
		phases = phases[:0]
		for _, s := range r.Cfg.Steps {
			phases = append(phases, phase{s, r.Cfg.StepDuration})
		}
	}
	workers := min(runtime.GOMAXPROCS(0)*4, len(r.users))
	var steps []metrics.Step
	for _, ph := range phases {
		if ctx.Err() != nil {
			break
		}
		pctx, cancel := context.WithTimeout(ctx, ph.dur)
		start := time.Now()
		var wg sync.WaitGroup
		for w := range workers {
			var own []*User
			for i := w; i < len(r.users); i += workers {
				own = append(own, r.users[i])
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := NewPacer(start, ph.rate*float64(len(own)))
				for i := int64(0); ; i++ {
					lag, ok := p.Wait(pctx, i)
					if !ok {
						return
					}
					r.Rec.Record(metrics.HistSendLag, w, lag)
					u := own[i%int64(len(own))]
					if u.Conn() != nil {
						r.behaviour.Act(pctx, u)
					}
				}
			}()
		}
		wg.Wait()
		cancel()
		st := metrics.Step{Rate: ph.rate * float64(len(r.users)), Start: start.Unix(), End: time.Now().Unix()}
		steps = append(steps, st)
		r.Cfg.Log.Info("load: phase done", "rate", st.Rate, "sent", r.Rec.Sent.Load())
		if r.Cfg.StepStop > 0 && len(phases) > 1 {
			// The samples of the step's seconds so far (the clock ticks
			// on its own goroutine, so the last second may be missing).
			w, err := metrics.WindowOf(r.Rec.Timeline(), st.Start, st.End)
			if err == nil && w.TTDCount > 0 && w.TTDP99 > r.Cfg.StepStop.Microseconds() {
				r.Cfg.Log.Info("load: p99 TTD over the step limit, no more steps", "rate", st.Rate, "p99_us", w.TTDP99)
				break
			}
		}
	}
	return steps
}

// drain waits for the stanzas in flight, up to Config.Drain.
func (r *Run) drain(ctx context.Context) {
	waitTasks := make(chan struct{})
	go func() { r.tasks.Wait(); close(waitTasks) }()
	deadline := time.NewTimer(r.Cfg.Drain)
	defer deadline.Stop()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	tasksDone := false
	for {
		if tasksDone && r.Rec.Received.Load()+r.Rec.Delayed.Load()+r.bounced.Load() >= r.expected.Load() {
			return
		}
		select {
		case <-waitTasks:
			tasksDone = true
			waitTasks = nil
		case <-poll.C:
		case <-deadline.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// shutdown closes every connection and waits for the readers.
func (r *Run) shutdown() {
	r.closing.Store(true)
	for _, u := range r.users {
		if c := u.conn.Swap(nil); c != nil {
			c.Close()
		}
	}
	r.readers.Wait()
	r.tasks.Wait()
}

// progressLine is the live line: elapsed, online, rates of the last
// second, TTD of the last second, errors.
func progressLine(el time.Duration, s metrics.Sample, users int, rec *metrics.Recorder) string {
	return fmt.Sprintf("%5ds online %d/%d  logins %d/s  sent %d/s  recv %d/s  ttd p50 %s p99 %s  errors %d",
		int(el.Seconds()), s.Connected, users, s.Logins, s.Sent, s.Received,
		report.Micros(s.TTDP50), report.Micros(s.TTDP99), rec.Errors.Load()+rec.LoginErrors.Load())
}
