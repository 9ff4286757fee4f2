// Package load is Meerkat's load generator: it logs in a population of
// users to any XMPP server, runs a named scenario against it, and
// measures what MongooseIM's Amoc measures — time to deliver (TTD) from a
// microsecond stamp the sender puts in each stanza to the moment the
// receiver parses it, login and connect times, IQ round trips — in HDR
// histograms that merge exactly across load processes (package metrics).
//
// A scenario is one file that registers itself (Register): what each
// user does at each of its send slots, and what the run prepares once
// every user is online. The runner does the rest: provisioning, the
// login ramp over several source addresses, pacing, receiving, the
// progress line, the result.
package load

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/load/metrics"
	"github.com/meerkat-xmpp/meerkat/internal/load/xmppc"
)

// Config is one load process's part of a run.
type Config struct {
	Scenario string
	Label    string // the target's name in reports ("meerkat", "ejabberd"…)

	// The target.
	Addr      string // host:port, or the wss:// URL for WebSocket
	Domain    string
	Transport string // xmppc.StartTLS, DirectTLS, WebSocket
	Mechanism string // "": the strongest SCRAM offered
	SM        bool   // enable stream management (XEP-0198)
	ServerPID int    // the server's process, sampled from /proc; 0: none

	// Users: the population is [0, Users); this process drives
	// [From, To) (To 0: Users).
	Users           int
	From, To        int
	UserPattern     string // fmt pattern with one %d: "load%d"
	PasswordPattern string // "loadpass%d"
	// Provision is how users come to exist: "none" (they exist),
	// "register" (in-band, XEP-0077), "cmd" (ProvisionCmd per user).
	Provision    string
	ProvisionCmd string // with {user} {domain} {jid} {password}; the password also on stdin
	// ProvisionFunc, when set, creates a user (tests).
	ProvisionFunc func(ctx context.Context, user, pass string) error

	RampRate    float64 // logins started per second; 0: as fast as Concurrency allows
	Concurrency int     // logins in flight at most
	Sources     int     // source addresses 127.0.0.1 … 127.0.0.<Sources> (loopback targets)

	Duration     time.Duration // of the sending phase (or of staying online, for login)
	Rate         float64       // stanzas per second per user
	Steps        []float64     // per-user rates to step through, StepDuration each (replaces Rate, Duration)
	StepDuration time.Duration
	// StepStop ends a stepped run after a step whose p99 TTD exceeded it
	// (0: run every step).
	StepStop   time.Duration
	Peers      int // K: peers each user sends to (one-to-one, presence, mam)
	BodyBytes  int // body size of the messages sent
	RoomSize   int // muc-light
	MUCService string
	MAMShare   float64       // mam: the share of users that query (the others send)
	Churn      time.Duration // presence: a user reconnects about this often
	Drain      time.Duration // how long to wait for stanzas in flight at the end
	Settle     time.Duration // login: how long sessions stay idle before the memory sample

	Keys *xmppc.KeyCache // SCRAM keys, shared by the run
	Log  *slog.Logger
	// Started, when set, is called with the run's recorder before the
	// first login (to serve its metrics).
	Started func(*metrics.Recorder)
	// Progress, when set, is called once a second with the live line.
	Progress func(line string)
}

func (c *Config) defaults() error {
	if c.Domain == "" {
		c.Domain = "localhost"
	}
	if c.Transport == "" {
		c.Transport = xmppc.StartTLS
	}
	if c.To == 0 {
		c.To = c.Users
	}
	if c.Users <= 0 || c.From < 0 || c.To > c.Users || c.From >= c.To {
		return fmt.Errorf("load: bad user range [%d,%d) of %d", c.From, c.To, c.Users)
	}
	if c.UserPattern == "" {
		c.UserPattern = "load%d"
	}
	if c.PasswordPattern == "" {
		c.PasswordPattern = "loadpass%d"
	}
	if !strings.Contains(c.UserPattern, "%d") {
		return fmt.Errorf("load: user pattern %q has no %%d", c.UserPattern)
	}
	if c.Provision == "" {
		c.Provision = "none"
	}
	switch c.Provision {
	case "none", "register", "cmd":
	default:
		return fmt.Errorf("load: unknown provisioning %q (none, register, cmd)", c.Provision)
	}
	if c.Provision == "cmd" && c.ProvisionCmd == "" {
		return fmt.Errorf("load: provisioning cmd needs a command")
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 64
	}
	if c.Sources <= 0 {
		c.Sources = 1
	}
	if c.Rate <= 0 {
		c.Rate = 1
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.StepDuration <= 0 {
		c.StepDuration = 10 * time.Second
	}
	if c.Peers <= 0 {
		c.Peers = 5
	}
	if c.BodyBytes <= 0 {
		c.BodyBytes = 100
	}
	if c.RoomSize <= 0 {
		c.RoomSize = 10
	}
	if c.MUCService == "" {
		c.MUCService = "muclight." + c.Domain
	}
	if c.MAMShare <= 0 {
		c.MAMShare = 0.1
	}
	if c.Churn <= 0 {
		c.Churn = 10 * time.Second
	}
	if c.Drain <= 0 {
		c.Drain = 5 * time.Second
	}
	if c.Settle <= 0 {
		c.Settle = 2 * time.Second
	}
	if c.Keys == nil {
		c.Keys = &xmppc.KeyCache{}
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if _, ok := Lookup(c.Scenario); !ok {
		return fmt.Errorf("load: unknown scenario %q (have %s)", c.Scenario, strings.Join(Names(), ", "))
	}
	return nil
}

// UserName and Password are user i's credentials.
func (c *Config) UserName(i int) string { return fmt.Sprintf(c.UserPattern, i) }
func (c *Config) Password(i int) string { return fmt.Sprintf(c.PasswordPattern, i) }

// source returns the local address for user i: 127.0.0.1 … 127.0.0.N,
// each with its own ephemeral ports (about 28,000 each by default), when
// the target is on loopback; nil otherwise.
func (c *Config) source(i int) net.IP {
	if c.Sources <= 1 {
		return nil
	}
	hostport := c.Addr
	if u, err := url.Parse(c.Addr); err == nil && strings.Contains(c.Addr, "://") {
		hostport = u.Host
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil
	}
	return net.IPv4(127, 0, 0, byte(1+i%c.Sources))
}

func (c *Config) options() xmppc.Options {
	return xmppc.Options{
		Transport: c.Transport, Addr: c.Addr, Domain: c.Domain, Mechanism: c.Mechanism,
		Keys: c.Keys, SM: c.SM, Presence: true, Timeout: 30 * time.Second,
	}
}
