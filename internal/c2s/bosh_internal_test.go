package c2s

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meerkat-xmpp/meerkat/xmlstream"
)

func newTestBOSHTransport() *boshTransport {
	return &boshTransport{
		srv: &Server{cfg: Config{MaxOutboundBytes: 1 << 20}}, sid: "s1", wait: time.Minute, hold: 1,
		pending: map[int64]*boshRequest{}, responses: map[int64][]byte{}, signal: make(chan struct{}, 1),
		lastRid: 9, creation: 1,
	}
}

func boshReq(t *testing.T, rid int, attrs string) *boshRequest {
	t.Helper()
	body, err := xmlstream.Parse([]byte("<body xmlns='" + NSBOSH + "' rid='" + strconv.Itoa(rid) + "' " + attrs + "/>"))
	if err != nil {
		t.Fatal(err)
	}
	return &boshRequest{rid: int64(rid), body: body, reply: make(chan []byte, 1)}
}

func replied(r *boshRequest) (string, bool) {
	select {
	case b := <-r.reply:
		return string(b), true
	default:
		return "", false
	}
}

// TestBOSHTerminateRequestWaitsForTheEnd: output written after the
// client's terminate request, before the stream's end, does not use up
// the terminate request (XEP-0124 §13): it waits for the end and
// carries both.
func TestBOSHTerminateRequestWaitsForTheEnd(t *testing.T) {
	tr := newTestBOSHTransport()
	held, term := boshReq(t, 10, ""), boshReq(t, 11, "type='terminate'")
	tr.mu.Lock()
	tr.acceptLocked(held)
	tr.acceptLocked(term)
	tr.mu.Unlock()
	if resp, ok := replied(held); !ok || resp != "<body xmlns='"+NSBOSH+"'/>" {
		t.Fatalf("the older request: %q %v", resp, ok)
	}
	iq := "<iq xmlns='jabber:client' type='result' id='x'/>"
	if err := tr.write([]byte(iq), []int{len(iq)}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if resp, ok := replied(term); ok {
		t.Fatalf("the terminate request was answered before the end: %s", resp)
	}
	if err := tr.write([]byte(boshClose), []int{len(boshClose)}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	resp, ok := replied(term)
	if want := "<body xmlns='" + NSBOSH + "' type='terminate'>" + iq + "</body>"; !ok || resp != want {
		t.Fatalf("terminate response %q, want %q", resp, want)
	}
	if !strings.Contains(string(tr.responses[11]), "terminate") {
		t.Error("the terminate response is not kept for retransmission")
	}
}
