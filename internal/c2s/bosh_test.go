package c2s_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/internal/config"
	"github.com/meerkat-xmpp/meerkat/internal/servertest"
	"github.com/meerkat-xmpp/meerkat/stanza"
	"github.com/meerkat-xmpp/meerkat/story"
	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

// A BOSH client by hand (XEP-0124, XEP-0206), to see the wrappers that
// story.BOSH hides.

const (
	nsBOSH  = "http://jabber.org/protocol/httpbind"
	nsXBOSH = "urn:xmpp:xbosh"
)

type boshClient struct {
	t      *testing.T
	srv    *servertest.Server
	url    string
	client *http.Client
	sid    string
	rid    int64
}

func newBOSHClient(t *testing.T, srv *servertest.Server) *boshClient {
	url, ok := srv.Addr(story.BOSH)
	if !ok {
		t.Fatal("no BOSH address")
	}
	c := &boshClient{t: t, srv: srv, url: url, rid: 1000,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: srv.TLSConfig()}}}
	t.Cleanup(c.client.CloseIdleConnections)
	return c
}

// postRaw sends a request as it is and returns the response's bytes.
func (c *boshClient) postRaw(body string) (int, []byte) {
	c.t.Helper()
	resp, err := c.client.Post(c.url, "text/xml; charset=utf-8", strings.NewReader(body))
	if err != nil {
		c.t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("POST: %v", err)
	}
	return resp.StatusCode, data
}

// post sends a request and parses the response <body/>.
func (c *boshClient) post(body string) *xmlstream.Element {
	c.t.Helper()
	code, data := c.postRaw(body)
	if code != http.StatusOK {
		c.t.Fatalf("HTTP %d: %s", code, data)
	}
	el, err := xmlstream.Parse(data)
	if err != nil || el.Name != "body" || el.NS != nsBOSH {
		c.t.Fatalf("response is not a BOSH body (%v): %s", err, data)
	}
	return el
}

// request builds the next request of the session with attrs and payload.
func (c *boshClient) request(attrs, payload string) string {
	c.rid++
	return fmt.Sprintf("<body xmlns='%s' xmlns:xmpp='%s' rid='%d' sid='%s' %s>%s</body>", nsBOSH, nsXBOSH, c.rid, c.sid, attrs, payload)
}

// create opens a session and returns the creation response.
func (c *boshClient) create(attrs string) *xmlstream.Element {
	c.t.Helper()
	c.rid++
	resp := c.post(fmt.Sprintf("<body xmlns='%s' xmlns:xmpp='%s' rid='%d' to='%s' hold='1' wait='10' xmpp:version='1.0' ver='1.11' %s/>",
		nsBOSH, nsXBOSH, c.rid, c.srv.Domain(), attrs))
	c.sid = resp.Attr("sid")
	if c.sid == "" {
		c.t.Fatalf("no sid in the creation response: %s", resp.AppendStandalone(nil))
	}
	return resp
}

// login authenticates as user (PLAIN), restarts and binds; it returns
// the full JID.
func (c *boshClient) login(user, pass string) string {
	c.t.Helper()
	c.create("")
	auth := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	resp := c.post(c.request("", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"+auth+"</auth>"))
	if resp.Child("success", stanza.NSSASL) == nil {
		c.t.Fatalf("auth: %s", resp.AppendStandalone(nil))
	}
	resp = c.post(c.request("xmpp:restart='true' to='"+c.srv.Domain()+"'", ""))
	features := resp.Child("features", stanza.NSStream)
	if features == nil || features.Child("bind", stanza.NSBind) == nil {
		c.t.Fatalf("restart: no bind feature: %s", resp.AppendStandalone(nil))
	}
	resp = c.post(c.request("", "<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>web</resource></bind></iq>"))
	iq := resp.Child("iq", stanza.NSClient)
	if iq == nil || iq.Attr("type") != "result" {
		c.t.Fatalf("bind: %s", resp.AppendStandalone(nil))
	}
	return iq.Child("bind", stanza.NSBind).Child("jid", stanza.NSBind).Text()
}

func boshAccount(t *testing.T, srv *servertest.Server, name string) story.Account {
	return story.NewAccount(t, srv, name)
}

// TestBOSHSessionCreation: the creation response carries the session's
// parameters and the stream features (XEP-0124 §7.1, XEP-0206 §3); no
// -PLUS mechanism is offered, as a BOSH session has no one TLS channel.
func TestBOSHSessionCreation(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	c := newBOSHClient(t, srv)
	resp := c.create("")
	for attr, want := range map[string]string{
		"wait": "10", "hold": "1", "requests": "2", "inactivity": "60", "polling": "1",
		"ver": "1.11", "from": srv.Domain(), "maxpause": "300",
	} {
		if got := resp.Attr(attr); got != want {
			t.Errorf("%s = %q, want %q", attr, got, want)
		}
	}
	if v, _ := resp.LookupAttr(nsXBOSH, "version"); v != "1.0" {
		t.Errorf("xmpp:version = %q", v)
	}
	if resp.Attr("authid") == "" {
		t.Error("no authid")
	}
	mechs := resp.Child("features", stanza.NSStream).Child("mechanisms", stanza.NSSASL)
	if mechs == nil {
		t.Fatalf("no mechanisms in %s", resp.AppendStandalone(nil))
	}
	var names []string
	for m := range mechs.Elements() {
		names = append(names, m.Text())
	}
	if !strings.Contains(strings.Join(names, " "), "SCRAM-SHA-256") || strings.Contains(strings.Join(names, " "), "PLUS") {
		t.Errorf("mechanisms: %v", names)
	}
	// A 'wait' above the server's maximum is lowered.
	c2 := newBOSHClient(t, srv)
	c2.rid++
	resp = c2.post(fmt.Sprintf("<body xmlns='%s' rid='%d' to='%s' hold='5' wait='3600'/>", nsBOSH, c2.rid, srv.Domain()))
	if resp.Attr("wait") != "60" || resp.Attr("hold") != "2" || resp.Attr("requests") != "3" {
		t.Errorf("wait=%s hold=%s requests=%s, want 60, 2, 3", resp.Attr("wait"), resp.Attr("hold"), resp.Attr("requests"))
	}
}

// TestBOSHLoginAndChat: a BOSH client logs in, its held request brings a
// message pushed by a TCP client, and its messages reach that client.
func TestBOSHLoginAndChat(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	bobAcct := boshAccount(t, srv, "bob")
	alice := story.MustConnect(t, srv, boshAccount(t, srv, "alice"), story.Options{})
	c := newBOSHClient(t, srv)
	bob := c.login(bobAcct.Localpart, bobAcct.Password)
	if bob != bobAcct.JID.String()+"/web" {
		t.Fatalf("bound %s", bob)
	}
	// An empty request is held until there is something to say.
	held := make(chan *xmlstream.Element)
	empty := c.request("", "")
	go func() { held <- c.post(empty) }()
	alice.Send(story.Chat(story.RawAddr(bob), "Hi bob"))
	resp := <-held
	msg := resp.Child("message", stanza.NSClient)
	if msg == nil || msg.Child("body", stanza.NSClient).Text() != "Hi bob" || msg.Attr("from") != alice.JID().String() {
		t.Fatalf("held request answered with %s", resp.AppendStandalone(nil))
	}
	// A stanza without xmlns is jabber:client (XEP-0206 §2). Its
	// request is held: there is nothing to answer.
	send := c.request("", "<message to='"+alice.JID().String()+"' type='chat'><body>Hi alice</body></message>")
	go func() { held <- c.post(send) }()
	alice.Expect(story.IsChat("Hi alice"), story.IsFrom(story.RawAddr(bob)))
	// The client ends the session (XEP-0124 §13): the held request
	// comes back, the terminate request is answered with terminate,
	// and the session is gone.
	resp = c.post(c.request("type='terminate'", "<presence type='unavailable' xmlns='jabber:client'/>"))
	if resp.Attr("type") != "terminate" {
		t.Errorf("terminate answered with %s", resp.AppendStandalone(nil))
	}
	if resp := <-held; resp.Attr("type") != "" || len(resp.Children) != 0 {
		t.Errorf("held request answered with %s", resp.AppendStandalone(nil))
	}
	// Any later request is told the session is over (item-not-found
	// once the server has forgotten it).
	resp = c.post(c.request("", ""))
	if resp.Attr("type") != "terminate" {
		t.Errorf("request after terminate answered with %s", resp.AppendStandalone(nil))
	}
}

// TestBOSHRequestOrder: requests are processed in rid order whatever the
// order they arrive in (XEP-0124 §14.2), and a request sent again gets
// the same response (§14.3).
func TestBOSHRequestOrder(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	acct := boshAccount(t, srv, "carol")
	c := newBOSHClient(t, srv)
	c.login(acct.Localpart, acct.Password)
	first := c.request("", "<iq xmlns='jabber:client' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
	second := c.request("", "<iq xmlns='jabber:client' type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>")
	var wg sync.WaitGroup
	var secondResp *xmlstream.Element
	wg.Add(1)
	go func() { // second first: it waits for the first
		defer wg.Done()
		secondResp = c.post(second)
	}()
	firstResp := c.post(first)
	wg.Wait()
	var ids []string
	for _, r := range []*xmlstream.Element{firstResp, secondResp} {
		for iq := range r.Elements() {
			ids = append(ids, iq.Attr("id"))
		}
	}
	if len(ids) < 2 {
		// When both were accepted at once (the second had arrived first),
		// the first went back empty at once (hold='1'): the results came
		// after it, and the last one waits for the next request (§11).
		for iq := range c.post(c.request("", "")).Elements() {
			ids = append(ids, iq.Attr("id"))
		}
	}
	if strings.Join(ids, ",") != "p1,p2" {
		t.Fatalf("results in order %v, want p1,p2", ids)
	}
	// The first request again: the same response.
	_, again := c.postRaw(first)
	if want := firstResp.AppendStandalone(nil); !bytes.Equal(again, want) {
		t.Errorf("retransmission answered with %s, want %s", again, want)
	}
	// A rid beyond the window ends the session (§14.2).
	c.rid += 10
	resp := c.post(c.request("", ""))
	if resp.Attr("type") != "terminate" || resp.Attr("condition") != "item-not-found" {
		t.Errorf("rid out of window answered with %s", resp.AppendStandalone(nil))
	}
}

// TestBOSHBadRequests: what is not a BOSH request gets the XEP-0124 §17
// error, never a hang.
func TestBOSHBadRequests(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, func(c *config.Config) { c.C2S.MaxStanzaBytes = 10 << 10 })
	c := newBOSHClient(t, srv)
	for _, tc := range []struct{ name, body, cond string }{
		{"not xml", "hello", "bad-request"},
		{"not a body", "<iq xmlns='jabber:client'/>", "bad-request"},
		{"wrong namespace", "<body xmlns='jabber:client' rid='1' to='localhost'/>", "bad-request"},
		{"two elements", "<body xmlns='" + nsBOSH + "' rid='1'/><body xmlns='" + nsBOSH + "' rid='2'/>", "bad-request"},
		{"DTD", "<!DOCTYPE body><body xmlns='" + nsBOSH + "' rid='1'/>", "bad-request"},
		{"no rid", "<body xmlns='" + nsBOSH + "' to='" + srv.Domain() + "'/>", "bad-request"},
		{"unknown host", "<body xmlns='" + nsBOSH + "' rid='1' to='example.net'/>", "host-unknown"},
		{"unknown sid", "<body xmlns='" + nsBOSH + "' rid='1' sid='nope'/>", "item-not-found"},
		{"too large", "<body xmlns='" + nsBOSH + "' rid='1'>" + strings.Repeat("<a/>", 5<<10) + "</body>", "policy-violation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := c.post(tc.body)
			if resp.Attr("type") != "terminate" || resp.Attr("condition") != tc.cond {
				t.Errorf("answered %s, want condition %s", resp.AppendStandalone(nil), tc.cond)
			}
		})
	}
	t.Run("GET", func(t *testing.T) {
		resp, err := c.client.Get(c.url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET: %s", resp.Status)
		}
	})
	t.Run("CORS", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodOptions, c.url, nil)
		req.Header.Set("Origin", "https://app.example")
		resp, err := c.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" || !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") {
			t.Errorf("preflight headers: %v", resp.Header)
		}
	})
	t.Run("stream error", func(t *testing.T) {
		// A stanza before authentication: the stream error travels in a
		// remote-stream-error terminate (XEP-0206 §6).
		c := newBOSHClient(t, srv)
		c.create("")
		resp := c.post(c.request("", "<message xmlns='jabber:client' to='x@localhost'><body>hi</body></message>"))
		if resp.Attr("type") != "terminate" || resp.Attr("condition") != "remote-stream-error" {
			t.Fatalf("answered %s", resp.AppendStandalone(nil))
		}
		se, ok := stanza.ParseStreamError(resp.Child("error", stanza.NSStream))
		if !ok || se.Condition != stanza.StreamNotAuthorized {
			t.Errorf("stream error %v in %s", se, resp.AppendStandalone(nil))
		}
	})
}

// TestBOSHInactivity: a client that stops making requests is gone after
// the inactivity period (XEP-0124 §10); a pause stretches it.
func TestBOSHInactivity(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, func(c *config.Config) { c.HTTP.BOSHInactivity = config.Duration{Duration: time.Second} })
	// The session ends 3 to 4 s after the pause (the janitor ticks every
	// second): more than the default 5 s is a ceiling that leaves room.
	alice := story.MustConnect(t, srv, boshAccount(t, srv, "alice"), story.Options{Timeout: 30 * time.Second})
	acct := boshAccount(t, srv, "dave")
	c := newBOSHClient(t, srv)
	dave := c.login(acct.Localpart, acct.Password)
	// Directed presence to alice, who hears when dave's session ends.
	presence := c.request("", "<presence xmlns='jabber:client' to='"+alice.JID().String()+"'/>")
	held := make(chan *xmlstream.Element, 1)
	go func() { held <- c.post(presence) }() // held: nothing to answer
	alice.Expect(story.IsPresence("", story.RawAddr(dave)))
	// A pause answers the request at once (§10) and keeps the session
	// past the inactivity period.
	start := time.Now()
	resp := c.post(c.request("pause='3'", ""))
	if resp.Attr("type") != "" {
		t.Fatalf("pause answered %s", resp.AppendStandalone(nil))
	}
	if resp := <-held; resp.Attr("type") != "" {
		t.Fatalf("held request answered %s", resp.AppendStandalone(nil))
	}
	alice.Expect(story.IsPresence("unavailable", story.RawAddr(dave)))
	if d := time.Since(start); d < 3*time.Second {
		t.Errorf("the session ended %v after a 3 s pause", d)
	}
	resp = c.post(c.request("", ""))
	if resp.Attr("condition") != "item-not-found" {
		t.Errorf("request after the session ended answered %s", resp.AppendStandalone(nil))
	}
}

// TestBOSHWait: a held request comes back empty when 'wait' is over.
func TestBOSHWait(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, func(c *config.Config) { c.HTTP.BOSHMaxWait = config.Duration{Duration: time.Second} })
	acct := boshAccount(t, srv, "erin")
	c := newBOSHClient(t, srv)
	c.login(acct.Localpart, acct.Password)
	start := time.Now()
	resp := c.post(c.request("", ""))
	if resp.Attr("type") != "" || len(resp.Children) != 0 {
		t.Errorf("answered %s", resp.AppendStandalone(nil))
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("answered after %v, before the 1 s wait", d)
	}
}

// TestBOSHShutdown: held requests learn of a shutdown.
func TestBOSHShutdown(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	// The server is gone before the test ends: no account cleanup.
	if err := srv.CreateUser(context.Background(), "frank", "secret"); err != nil {
		t.Fatal(err)
	}
	c := newBOSHClient(t, srv)
	c.login("frank", "secret")
	// Two empty requests with hold=1: once the first comes back, the
	// second is held.
	r1, r2 := c.request("", ""), c.request("", "")
	held := make(chan *xmlstream.Element)
	go func() { held <- c.post(r2) }()
	if resp := c.post(r1); len(resp.Children) != 0 {
		t.Fatalf("first request answered %s", resp.AppendStandalone(nil))
	}
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(context.Background()) }()
	resp := <-held
	if resp.Attr("type") != "terminate" || resp.Attr("condition") != "remote-stream-error" {
		t.Fatalf("answered %s", resp.AppendStandalone(nil))
	}
	if se, ok := stanza.ParseStreamError(resp.Child("error", stanza.NSStream)); !ok || se.Condition != stanza.StreamSystemShutdown {
		t.Errorf("stream error %v", se)
	}
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// TestBOSHStreamErrorWaitsForRequest: when the server ends a session no
// request is held for, the next request still gets the stream error.
func TestBOSHStreamErrorWaitsForRequest(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	if err := srv.CreateUser(context.Background(), "grace", "secret"); err != nil {
		t.Fatal(err)
	}
	c := newBOSHClient(t, srv)
	c.login("grace", "secret")
	// The account goes while grace has no request at the server.
	if err := srv.RemoveUser(context.Background(), "grace"); err != nil {
		t.Fatal(err)
	}
	resp := c.post(c.request("", ""))
	if resp.Attr("type") != "terminate" || resp.Attr("condition") != "remote-stream-error" || resp.Child("error", stanza.NSStream) == nil {
		t.Fatalf("answered %s", resp.AppendStandalone(nil))
	}
	// Then the session is over (item-not-found once it is forgotten).
	resp = c.post(c.request("", ""))
	if resp.Attr("type") != "terminate" {
		t.Errorf("then answered %s", resp.AppendStandalone(nil))
	}
}

// TestBOSHTerminateGetsTheLastWord: what the session says between the
// client's terminate request and the end of the stream comes in the
// terminate response (XEP-0124 §13), not in one the client no longer
// waits for.
func TestBOSHTerminateGetsTheLastWord(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t)
	acct := boshAccount(t, srv, "heidi")
	c := newBOSHClient(t, srv)
	c.login(acct.Localpart, acct.Password)
	resp := c.post(c.request("type='terminate'", "<iq xmlns='jabber:client' type='get' id='last'><ping xmlns='urn:xmpp:ping'/></iq>"))
	if resp.Attr("type") != "terminate" {
		t.Fatalf("terminate answered with %s", resp.AppendStandalone(nil))
	}
	if iq := resp.Child("iq", stanza.NSClient); iq == nil || iq.Attr("id") != "last" || iq.Attr("type") != "result" {
		t.Errorf("the ping result is not in the terminate response: %s", resp.AppendStandalone(nil))
	}
}
