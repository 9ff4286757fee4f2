package story

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdg-go/scram"

	"github.com/meerkat-xmpp/meerkat/jid"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// fakeServer is a small scripted XMPP server on a loopback listener, to
// test the client side without a real server: STARTTLS and direct TLS,
// SASL PLAIN and SCRAM (with channel binding, through xdg-go/scram's server
// side), resource binding, legacy session, stream management, and routing
// of messages and presence between its sessions, enough for the runner.
type fakeServer struct {
	t      testing.TB
	domain string
	cert   tls.Certificate
	tcp    net.Listener
	direct net.Listener

	// Knobs, set before the first connection.
	mechs         []string // offered after TLS
	cbAdvertised  []string // XEP-0440 types advertised; nil: no advertisement
	rejectPlus    bool     // fail every -PLUS exchange (a server that cannot bind)
	maxTLS        uint16
	legacySession bool // <session/> without <optional/>
	offerSM       bool
	ignoreClose   bool // never answer the client's </stream:stream>
	// onElement, when set, sees every element a bound session sends first;
	// returning true means it was handled.
	onElement func(sc *fakeConn, el *xmlstream.Element) bool

	mu       sync.Mutex
	gone     *sync.Cond        // on mu: broadcast when a connection's goroutine ends
	conns    map[net.Conn]bool // every accepted connection, to close them
	users    map[string]string // localpart → password
	sessions map[jid.JID]*fakeConn
	log      []string // notable events, for assertions
	wg       sync.WaitGroup
}

func newFakeServer(t testing.TB) *fakeServer {
	t.Helper()
	fs := &fakeServer{
		t:        t,
		domain:   "fake.test",
		cert:     selfSigned(t, "fake.test"),
		mechs:    []string{ScramSHA512Plus, ScramSHA512, ScramSHA256Plus, ScramSHA256, ScramSHA1Plus, ScramSHA1, Plain},
		offerSM:  true,
		users:    map[string]string{},
		conns:    map[net.Conn]bool{},
		sessions: map[jid.JID]*fakeConn{},
	}
	fs.gone = sync.NewCond(&fs.mu)
	var err error
	if fs.tcp, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if fs.direct, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	// The accept loops end when the listeners are closed; the connection
	// goroutines when their connections are, all in the cleanup.
	for _, ln := range []net.Listener{fs.tcp, fs.direct} {
		fs.wg.Go(func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				fs.mu.Lock()
				fs.conns[conn] = true
				fs.mu.Unlock()
				fc := &fakeConn{fs: fs, raw: conn, conn: conn, direct: ln == fs.direct}
				fs.wg.Go(fc.serve)
			}
		})
	}
	t.Cleanup(fs.close)
	return fs
}

func (fs *fakeServer) close() {
	fs.tcp.Close()
	fs.direct.Close()
	fs.mu.Lock()
	for conn := range fs.conns {
		conn.Close()
	}
	fs.mu.Unlock()
	fs.wg.Wait()
}

// openConns waits until the server has let go of every connection, for d
// at most (a client's Close returns when the server's closing tag came,
// before the server's goroutine for it ends), and returns how many are
// left.
func (fs *fakeServer) openConns(d time.Duration) int {
	stop := time.AfterFunc(d, func() {
		fs.mu.Lock()
		fs.gone.Broadcast()
		fs.mu.Unlock()
	})
	defer stop.Stop()
	deadline := time.Now().Add(d)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for len(fs.conns) > 0 && time.Now().Before(deadline) {
		fs.gone.Wait()
	}
	return len(fs.conns)
}

// events returns what the server logged.
func (fs *fakeServer) events() []string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]string(nil), fs.log...)
}

func (fs *fakeServer) logf(format string, args ...any) {
	fs.mu.Lock()
	fs.log = append(fs.log, fmt.Sprintf(format, args...))
	fs.mu.Unlock()
}

// Server implementation.
func (fs *fakeServer) Domain() string { return fs.domain }
func (fs *fakeServer) Addr(t Transport) (string, bool) {
	switch t {
	case TCP:
		return fs.tcp.Addr().String(), true
	case DirectTLS:
		return fs.direct.Addr().String(), true
	}
	return "", false
}
func (fs *fakeServer) TLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(fs.cert.Leaf)
	return &tls.Config{RootCAs: pool}
}
func (fs *fakeServer) CreateUser(_ context.Context, local, pass string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if _, ok := fs.users[local]; ok {
		return fmt.Errorf("user %s exists", local)
	}
	fs.users[local] = pass
	return nil
}
func (fs *fakeServer) RemoveUser(_ context.Context, local string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	delete(fs.users, local)
	fs.log = append(fs.log, "removed "+local)
	return nil
}

func (fs *fakeServer) tlsConfig() *tls.Config {
	cfg := &tls.Config{Certificates: []tls.Certificate{fs.cert}, MaxVersion: fs.maxTLS}
	return cfg
}

// selfSigned makes an ECDSA P-256 certificate signed with SHA-256, so that
// tls-server-end-point hashes with SHA-256 (RFC 5929 §4.1).
func selfSigned(t testing.TB, host string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: host},
		DNSNames:              []string{host},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// fakeConn is one client connection to the fake server.
type fakeConn struct {
	fs     *fakeServer
	raw    net.Conn // the accepted connection
	conn   net.Conn // raw, or its TLS server
	direct bool
	dec    *xmlstream.Decoder
	parser *xmlstream.Parser

	wmu    sync.Mutex
	secure bool
	user   string
	jid    jid.JID
	smOn   bool
	smIn   uint32 // stanzas received from the client since enable

	available bool // sent available presence; guarded by fs.mu
}

func (sc *fakeConn) send(s string) {
	sc.wmu.Lock()
	defer sc.wmu.Unlock()
	sc.conn.Write([]byte(s))
}

func (sc *fakeConn) sendEl(el *xmlstream.Element) { sc.send(serialize(el)) }

func (sc *fakeConn) reader() {
	sc.parser = xmlstream.NewParser(xmlstream.ModeStream, xmlstream.Limits{})
	sc.dec = xmlstream.NewDecoder(sc.conn, sc.parser, 4096)
}

// next returns the next element; a new stream header is answered with
// features first.
func (sc *fakeConn) next() (*xmlstream.Element, bool) {
	for {
		ev, err := sc.dec.Next()
		if err != nil {
			return nil, false
		}
		switch ev.Kind {
		case xmlstream.EventStreamOpen:
			sc.openStream(ev.Element)
		case xmlstream.EventStreamClose:
			if sc.fs.ignoreClose {
				continue
			}
			sc.send(streamFooter)
			return nil, false
		case xmlstream.EventElement:
			return ev.Element, true
		}
	}
}

func (sc *fakeConn) openStream(h *xmlstream.Element) {
	fs := sc.fs
	sc.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='" +
		fs.domain + "' id='" + randomHex(4) + "' version='1.0' xml:lang='en'>")
	if to := h.Attr("to"); to != fs.domain {
		sc.send("<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>")
		return
	}
	f := xmlstream.NewElement("features", stanza.NSStream)
	switch {
	case !sc.secure:
		f.AddChild(xmlstream.NewElement("starttls", stanza.NSTLS).AddChild(xmlstream.NewElement("required", stanza.NSTLS)))
	case sc.user == "":
		m := xmlstream.NewElement("mechanisms", stanza.NSSASL)
		for _, name := range fs.mechs {
			m.AddChild(xmlstream.NewElement("mechanism", stanza.NSSASL).AddText(name))
		}
		f.AddChild(m)
		if fs.cbAdvertised != nil {
			cb := xmlstream.NewElement("sasl-channel-binding", nsSASLChannelBind)
			for _, typ := range fs.cbAdvertised {
				cb.AddChild(xmlstream.NewElement("channel-binding", nsSASLChannelBind).SetAttr("type", typ))
			}
			f.AddChild(cb)
		}
	default:
		f.AddChild(xmlstream.NewElement("bind", stanza.NSBind))
		s := xmlstream.NewElement("session", stanza.NSSession)
		if !fs.legacySession {
			s.AddChild(xmlstream.NewElement("optional", stanza.NSSession))
		}
		f.AddChild(s)
		if fs.offerSM {
			f.AddChild(xmlstream.NewElement("sm", NSSM))
		}
	}
	sc.sendEl(f)
}

func (sc *fakeConn) serve() {
	fs := sc.fs
	defer func() {
		sc.conn.Close()
		fs.mu.Lock()
		delete(fs.conns, sc.raw)
		fs.gone.Broadcast()
		fs.mu.Unlock()
		if !sc.jid.IsZero() {
			fs.mu.Lock()
			if fs.sessions[sc.jid] == sc {
				delete(fs.sessions, sc.jid)
			}
			fs.mu.Unlock()
		}
	}()
	if sc.direct {
		sc.conn = tls.Server(sc.conn, fs.tlsConfig())
		sc.secure = true
	}
	sc.reader()
	for {
		el, ok := sc.next()
		if !ok {
			return
		}
		switch {
		case el.NS == stanza.NSTLS && el.Name == "starttls":
			sc.send("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
			sc.conn = tls.Server(sc.conn, fs.tlsConfig())
			sc.secure = true
			sc.reader()
		case el.NS == stanza.NSSASL && el.Name == "auth":
			if !sc.auth(el) {
				continue
			}
			sc.parser.Reset()
		case el.NS == NSSM && el.Name == "enable":
			sc.smOn = true
			sc.send("<enabled xmlns='urn:xmpp:sm:3' id='sm1'/>")
		case el.NS == NSSM && el.Name == "a":
			// Tell the client what it acknowledged, as a message.
			sc.send("<message type='chat'><body>acked h=" + el.Attr("h") + "</body></message>")
		case el.NS == NSSM && el.Name == "r":
			sc.send("<a xmlns='urn:xmpp:sm:3' h='" + strconv.FormatUint(uint64(sc.smIn), 10) + "'/>")
		default:
			if sc.smOn && stanza.KindOf(el, stanza.NSClient) != stanza.KindOther {
				sc.smIn++
			}
			if fs.onElement != nil && fs.onElement(sc, el) {
				continue
			}
			sc.stanza(el)
		}
	}
}

// auth runs one SASL exchange; it reports success.
func (sc *fakeConn) auth(el *xmlstream.Element) bool {
	fs := sc.fs
	mech := el.Attr("mechanism")
	fail := func(cond string) bool {
		sc.send("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><" + cond + "/></failure>")
		return false
	}
	data, err := decodeSASL(el.Text())
	if err != nil || !slices.Contains(fs.mechs, mech) {
		return fail("invalid-mechanism")
	}
	if mech == Plain {
		parts := strings.Split(string(data), "\x00")
		fs.mu.Lock()
		pass, ok := fs.users[parts[len(parts)-2]]
		fs.mu.Unlock()
		if len(parts) != 3 || !ok || pass != parts[2] {
			return fail("not-authorized")
		}
		sc.user = parts[1]
		fs.logf("auth %s", mech)
		sc.send("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
		return true
	}
	var h scram.HashGeneratorFcn
	switch strings.TrimSuffix(mech, "-PLUS") {
	case ScramSHA1:
		h = scram.SHA1
	case ScramSHA256:
		h = scram.SHA256
	default:
		h = scram.SHA512
	}
	var user string
	srv, _ := h.NewServer(func(name string) (scram.StoredCredentials, error) {
		fs.mu.Lock()
		pass, ok := fs.users[name]
		fs.mu.Unlock()
		if !ok {
			return scram.StoredCredentials{}, fmt.Errorf("no user %s", name)
		}
		user = name
		c, _ := h.NewClient(name, pass, "")
		return c.GetStoredCredentials(scram.KeyFactors{Salt: "fakesalt", Iters: 4096}), nil
	})
	// The gs2 header says which binding the client used (RFC 5802 §7).
	gs2 := strings.SplitN(string(data), ",", 2)[0]
	var conv *scram.ServerConversation
	if strings.HasSuffix(mech, "-PLUS") {
		if fs.rejectPlus {
			fs.logf("auth %s rejected", mech)
			return fail("not-authorized")
		}
		typ := strings.TrimPrefix(gs2, "p=")
		cb, err := sc.binding(typ)
		if err != nil {
			return fail("not-authorized")
		}
		conv = srv.NewConversationWithChannelBindingRequired(cb)
		fs.logf("auth %s %s", mech, typ)
	} else {
		conv = srv.NewConversation()
		fs.logf("auth %s gs2=%s", mech, gs2)
	}
	msg := string(data)
	for {
		out, err := conv.Step(msg)
		if err != nil {
			return fail("not-authorized")
		}
		if conv.Done() {
			sc.user = user
			sc.send("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + base64.StdEncoding.EncodeToString([]byte(out)) + "</success>")
			return true
		}
		sc.send("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + base64.StdEncoding.EncodeToString([]byte(out)) + "</challenge>")
		resp, ok := sc.next()
		if !ok || resp.Name != "response" {
			return false
		}
		b, err := decodeSASL(resp.Text())
		if err != nil {
			return fail("incorrect-encoding")
		}
		msg = string(b)
	}
}

// binding computes the server's side of a channel binding.
func (sc *fakeConn) binding(typ string) (scram.ChannelBinding, error) {
	st := sc.conn.(*tls.Conn).ConnectionState()
	switch typ {
	case TLSExporter:
		return scram.NewTLSExporterBinding(&st)
	case TLSServerEndPoint:
		sum := sha256.Sum256(sc.fs.cert.Leaf.Raw)
		return scram.ChannelBinding{Type: scram.ChannelBindingTLSServerEndpoint, Data: sum[:]}, nil
	}
	return scram.ChannelBinding{}, fmt.Errorf("unsupported %s", typ)
}

// stanza handles bind, session, ping and routing.
func (sc *fakeConn) stanza(el *xmlstream.Element) {
	fs := sc.fs
	switch {
	case el.Name == "iq" && el.Child("bind", stanza.NSBind) != nil:
		res := el.Child("bind", stanza.NSBind).ChildText("resource", stanza.NSBind)
		if res == "" {
			res = "gen" + randomHex(4)
		}
		j, _ := jid.New(sc.user, fs.domain, res)
		fs.mu.Lock()
		old := fs.sessions[j]
		sc.jid = j
		fs.sessions[j] = sc
		fs.mu.Unlock()
		if old != nil {
			// RFC 6120 §7.7.2.2: the new session replaces the old one.
			old.send("<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>")
		}
		sc.send("<iq type='result' id='" + el.Attr("id") + "'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>" + j.String() + "</jid></bind></iq>")
	case el.Name == "iq" && el.Child("session", stanza.NSSession) != nil:
		fs.logf("session")
		sc.send("<iq type='result' id='" + el.Attr("id") + "'/>")
	case el.Name == "iq" && el.Attr("to") == "" && el.Child("ping", NSPing) != nil:
		sc.send("<iq type='result' id='" + el.Attr("id") + "' from='" + fs.domain + "'/>")
	case el.Name == "presence" && el.Attr("to") == "":
		// RFC 6121 §4.2.2: broadcast to the user's own resources, and send
		// the new resource the presence of the others.
		fs.mu.Lock()
		sc.available = el.Attr("type") == ""
		fs.mu.Unlock()
		for _, o := range fs.resourcesOf(sc.jid.Bare()) {
			if o == sc {
				continue
			}
			o.sendEl(stamp(el, o.jid, sc.jid))
			if sc.available {
				sc.sendEl(stamp(xmlstream.NewElement("presence", stanza.NSClient), sc.jid, o.jid))
			}
		}
		sc.sendEl(stamp(el, sc.jid, sc.jid))
	case el.Name == "message":
		to, err := jid.Parse(el.Attr("to"))
		if err != nil {
			return
		}
		var targets []*fakeConn
		if to.IsBare() {
			targets = fs.resourcesOf(to)
		} else {
			fs.mu.Lock()
			if o := fs.sessions[to]; o != nil {
				targets = append(targets, o)
			}
			fs.mu.Unlock()
		}
		if len(targets) == 0 {
			e := stanza.ErrorReply(stamp(el, to, sc.jid), stanza.NewError(stanza.ServiceUnavailable, ""))
			sc.sendEl(e)
		}
		for _, o := range targets {
			o.sendEl(stamp(el, o.jid, sc.jid))
		}
	}
}

func (fs *fakeServer) resourcesOf(bare jid.JID) []*fakeConn {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var out []*fakeConn
	for j, sc := range fs.sessions {
		if j.Bare() == bare && sc.available {
			out = append(out, sc)
		}
	}
	return out
}

// stamp returns a copy of el addressed from from to to.
func stamp(el *xmlstream.Element, to, from jid.JID) *xmlstream.Element {
	c := el.ShallowCopy()
	c.SetAttr("to", to.String()).SetAttr("from", from.String())
	return c
}

// addUser creates an account on the fake server.
func (fs *fakeServer) addUser(local string) Account {
	pass := "pw-" + local
	fs.CreateUser(context.Background(), local, pass)
	return Account{Localpart: local, Password: pass, JID: jid.MustParse(local + "@" + fs.domain)}
}
