// http-app: the application side of dtm's HTTP examples, written with dtm's
// own HTTP SDK (github.com/dtm-labs/client/dtmcli) and pointed at a
// coordinator's HTTP API (dtx-server, or dtm itself as the reference). Each
// case runs one transaction against cmd/http-busi, then checks the final
// status and branch rows through GET /api/dtmsvr/query and every call the
// branch service saw (handler, method, gid, trans_type, branch_id, op, body,
// headers). Prints "OK <case> gid=<gid>" per case; on the first mismatch it
// prints "FAIL <case> ...", the query answer and the calls, and exits 1.
//
//	http-app -dtm http://127.0.0.1:<port>/api/dtmsvr -busi http://127.0.0.1:<port>
//	         [-run regexp] [-v]
//
// -v logs every request the SDK makes and the answer (dtm's logger at debug
// level, on stderr).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/dtm-labs/client/dtmcli"
	"github.com/dtm-labs/client/dtmcli/logger"
	"github.com/go-resty/resty/v2"
)

var (
	dtm     = flag.String("dtm", "http://127.0.0.1:36789/api/dtmsvr", "the coordinator's HTTP API")
	busiURL = flag.String("busi", "", "http-busi's base URL, http://host:port")
	run     = flag.String("run", "", "run only the cases whose name matches")
	verbose = flag.Bool("v", false, "log the SDK's requests and answers")
	wait    = flag.Duration("wait", 30*time.Second, "how long to wait for a transaction to finish")
	isDtm   = flag.Bool("against-dtm", false, "the coordinator is dtm itself: expect dtm's answers where dtx departs (docs/semantics.md)")
)

// Req is every branch's payload. Fail / Ongoing name the handler that answers
// 409 FAILURE / 425 ONGOING (once) (see cmd/http-busi).
type Req struct {
	Amount  int    `json:"amount"`
	UserID  int    `json:"user_id"`
	Fail    string `json:"fail,omitempty"`
	Ongoing string `json:"ongoing,omitempty"`
}

// Call mirrors cmd/http-busi's record of one request.
type Call struct {
	Handler     string            `json:"handler"`
	Method      string            `json:"method"`
	Query       map[string]string `json:"query"`
	Body        string            `json:"body"`
	ContentType string            `json:"content_type"`
	Headers     map[string]string `json:"headers"`
	Status      int               `json:"status"`
}

// Branch and Trans hold the fields of dtm's query answer this test reads.
type Branch struct {
	Gid      string `json:"gid"`
	URL      string `json:"url"`
	BranchID string `json:"branch_id"`
	Op       string `json:"op"`
	Status   string `json:"status"`
}

type Trans struct {
	Gid            string `json:"gid"`
	TransType      string `json:"trans_type"`
	Status         string `json:"status"`
	Protocol       string `json:"protocol"`
	QueryPrepared  string `json:"query_prepared"`
	RollbackReason string `json:"rollback_reason"`
}

type queryAnswer struct {
	Transaction *Trans   `json:"transaction"`
	Branches    []Branch `json:"branches"`
}

// want is one expected call: handler, op, branch id and the status code the
// handler answered.
type want struct {
	handler  string
	op       string
	branchID string
	status   int
}

// failure is what fatalf panics with; runCase reports it.
type failure struct{ msg string }

// tcase carries the gid and the last answers, for the failure report.
type tcase struct {
	name      string
	gid       string
	lastQuery string
	lastCalls string
}

func (t *tcase) fatalf(format string, args ...interface{}) {
	panic(failure{fmt.Sprintf(format, args...)})
}

func busi(handler string) string { return *busiURL + "/api/busi/" + handler }

func mustJSON(v interface{}) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func httpGet(u string, out interface{}) (string, error) {
	resp, err := http.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if resp.StatusCode != http.StatusOK {
		return sb.String(), fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, sb.String())
	}
	return sb.String(), json.Unmarshal([]byte(sb.String()), out)
}

// query reads the transaction through the coordinator's HTTP API.
func (t *tcase) queryNow() queryAnswer {
	var q queryAnswer
	raw, err := httpGet(strings.TrimSuffix(*dtm, "/")+"/query?gid="+url.QueryEscape(t.gid), &q)
	t.lastQuery = raw
	if err != nil {
		t.fatalf("query: %v", err)
	}
	return q
}

// waitStatus polls the query until the transaction is in status `status`.
func (t *tcase) waitStatus(status string) queryAnswer {
	deadline := time.Now().Add(*wait)
	for {
		q := t.queryNow()
		if q.Transaction != nil && q.Transaction.Status == status {
			return q
		}
		if time.Now().After(deadline) {
			got := "no transaction"
			if q.Transaction != nil {
				got = q.Transaction.Status
			}
			t.fatalf("status %q after %v, want %q", got, *wait, status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (t *tcase) calls() []Call {
	var calls []Call
	raw, err := httpGet(*busiURL+"/api/ctl/calls?gid="+url.QueryEscape(t.gid), &calls)
	t.lastCalls = raw
	if err != nil {
		t.fatalf("reading http-busi's calls: %v", err)
	}
	return calls
}

// waitCalls waits until http-busi has seen n calls for the gid (a branch
// call may still be in flight when the status is final), and fails unless
// it saw exactly n.
func (t *tcase) waitCalls(n int) []Call {
	deadline := time.Now().Add(*wait)
	for {
		c := t.calls()
		if len(c) > n || (len(c) < n && time.Now().After(deadline)) {
			t.fatalf("http-busi saw %d calls, want %d", len(c), n)
		}
		if len(c) == n {
			return c
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkTrans checks the transaction record of the query answer.
func (t *tcase) checkTrans(q queryAnswer, transType, status string) {
	tr := q.Transaction
	if tr == nil {
		t.fatalf("query: no transaction")
	}
	if tr.Gid != t.gid || tr.TransType != transType || tr.Status != status {
		t.fatalf("query: gid=%q trans_type=%q status=%q, want %q %q %q", tr.Gid, tr.TransType, tr.Status,
			t.gid, transType, status)
	}
	if tr.Protocol != "http" {
		t.fatalf("query: protocol %q, want \"http\" (dtmcli sends \"\", which means http)", tr.Protocol)
	}
}

// checkBranches checks the branch rows: every (branch_id, op) in rows with
// its status, and no other rows.
func (t *tcase) checkBranches(q queryAnswer, rows map[string]string) {
	got := map[string]string{}
	for _, b := range q.Branches {
		if b.Gid != t.gid {
			t.fatalf("query: branch %s/%s has gid %q", b.BranchID, b.Op, b.Gid)
		}
		got[b.BranchID+" "+b.Op] = b.Status
	}
	for k, v := range rows {
		if got[k] != v {
			t.fatalf("query: branch %s is %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(rows) {
		t.fatalf("query: %d branch rows, want %d", len(got), len(rows))
	}
}

// checkCalls checks the calls in order. Every call carries the gid and the
// trans type; body is the JSON every call with a payload must carry (GETs
// carry none); header, if set, is the X-Compat-Case every call must carry.
func (t *tcase) checkCalls(calls []Call, transType string, body string, header string, wants ...want) {
	if len(calls) != len(wants) {
		t.fatalf("%d calls to check, want %d", len(calls), len(wants))
	}
	for i, w := range wants {
		c := calls[i]
		where := fmt.Sprintf("call %d (%s)", i+1, c.Handler)
		if c.Handler != w.handler || c.Query["op"] != w.op || c.Query["branch_id"] != w.branchID ||
			c.Status != w.status {
			t.fatalf("%s: %s op=%s branch_id=%s answered %d, want %s op=%s branch_id=%s answered %d",
				where, c.Handler, c.Query["op"], c.Query["branch_id"], c.Status,
				w.handler, w.op, w.branchID, w.status)
		}
		if c.Query["gid"] != t.gid || c.Query["trans_type"] != transType {
			t.fatalf("%s: query gid=%q trans_type=%q, want %q %q", where, c.Query["gid"],
				c.Query["trans_type"], t.gid, transType)
		}
		if w.op == "msg" {
			// The check-back: a GET with no body (dtm: no payload -> GET).
			if c.Method != http.MethodGet || c.Body != "" {
				t.fatalf("%s: %s with body %q, want GET with no body", where, c.Method, c.Body)
			}
		} else {
			if c.Method != http.MethodPost {
				t.fatalf("%s: method %s, want POST", where, c.Method)
			}
			if !jsonEqual(c.Body, body) {
				t.fatalf("%s: body %q, want %q", where, c.Body, body)
			}
			if !strings.HasPrefix(c.ContentType, "application/json") {
				t.fatalf("%s: Content-Type %q, want application/json", where, c.ContentType)
			}
		}
		if header != "" && c.Headers["X-Compat-Case"] != header {
			t.fatalf("%s: X-Compat-Case %q, want %q (from branch_headers)", where, c.Headers["X-Compat-Case"], header)
		}
	}
}

func jsonEqual(a, b string) bool {
	var x, y interface{}
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return a == b
	}
	return mustJSON(x) == mustJSON(y)
}

func expectFailure(t *tcase, what string, err error) {
	if err == nil || !strings.Contains(err.Error(), dtmcli.ResultFailure) {
		t.fatalf("%s: want an error with FAILURE (HTTP 409), got %v", what, err)
	}
}

func setPrepared(t *tcase, result string) {
	resp, err := http.Post(*busiURL+"/api/ctl/prepared?gid="+url.QueryEscape(t.gid)+"&result="+result, "", nil)
	if err != nil {
		t.fatalf("ctl: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.fatalf("ctl: %d", resp.StatusCode)
	}
}

var ok = Req{Amount: 30, UserID: 1}

func newSaga(t *tcase, in Req) *dtmcli.Saga {
	return dtmcli.NewSaga(*dtm, t.gid).
		Add(busi("TransOut"), busi("TransOutCompensate"), ok).
		Add(busi("TransIn"), busi("TransInCompensate"), in)
}

func tccBody(t *tcase, in Req) dtmcli.TccGlobalFunc {
	return func(tcc *dtmcli.Tcc) (*resty.Response, error) {
		if _, err := tcc.CallBranch(ok, busi("TransOutTry"), busi("TransOutConfirm"), busi("TransOutCancel")); err != nil {
			return nil, err
		}
		return tcc.CallBranch(in, busi("TransInTry"), busi("TransInConfirm"), busi("TransInCancel"))
	}
}

// The try calls come from the SDK, which adds the coordinator's address.
func checkTryDtm(t *tcase, calls []Call) {
	for _, c := range calls {
		if c.Query["op"] == "try" && c.Query["dtm"] != *dtm {
			t.fatalf("try %s: dtm=%q, want %q", c.Query["branch_id"], c.Query["dtm"], *dtm)
		}
	}
}

var cases = []struct {
	name string
	fn   func(t *tcase)
}{
	{"saga", func(t *tcase) {
		s := newSaga(t, ok)
		s.WaitResult = true
		s.BranchHeaders = map[string]string{"X-Compat-Case": "saga"}
		if err := s.Submit(); err != nil {
			t.fatalf("submit: %v", err)
		}
		q := t.waitStatus("succeed")
		t.checkTrans(q, "saga", "succeed")
		t.checkBranches(q, map[string]string{"01 action": "succeed", "01 compensate": "prepared",
			"02 action": "succeed", "02 compensate": "prepared"})
		t.checkCalls(t.waitCalls(2), "saga", mustJSON(ok), "saga",
			want{"TransOut", "action", "01", 200}, want{"TransIn", "action", "02", 200})
	}},
	{"saga-rollback", func(t *tcase) {
		in := ok
		in.Fail = "TransIn"
		s := newSaga(t, in)
		s.WaitResult = true
		expectFailure(t, "submit (TransIn answers 409)", s.Submit())
		q := t.waitStatus("failed")
		t.checkTrans(q, "saga", "failed")
		if q.Transaction.RollbackReason == "" {
			t.fatalf("query: no rollback_reason")
		}
		t.checkBranches(q, map[string]string{"01 action": "succeed", "01 compensate": "succeed",
			"02 action": "failed", "02 compensate": "succeed"})
		calls := t.waitCalls(4)
		// Payloads differ per step: check the bodies apart.
		t.checkCalls(calls[:1], "saga", mustJSON(ok), "", want{"TransOut", "action", "01", 200})
		t.checkCalls(calls[1:3], "saga", mustJSON(in), "",
			want{"TransIn", "action", "02", 409}, want{"TransInCompensate", "compensate", "02", 200})
		t.checkCalls(calls[3:], "saga", mustJSON(ok), "", want{"TransOutCompensate", "compensate", "01", 200})
	}},
	{"saga-ongoing", func(t *tcase) {
		in := ok
		in.Ongoing = "TransIn"
		s := newSaga(t, in)
		s.RetryInterval = 1
		if err := s.Submit(); err != nil {
			t.fatalf("submit: %v", err)
		}
		q := t.waitStatus("succeed")
		t.checkTrans(q, "saga", "succeed")
		calls := t.waitCalls(3)
		t.checkCalls(calls[:1], "saga", mustJSON(ok), "", want{"TransOut", "action", "01", 200})
		t.checkCalls(calls[1:], "saga", mustJSON(in), "",
			want{"TransIn", "action", "02", 425}, want{"TransIn", "action", "02", 200})
	}},
	{"saga-resubmit", func(t *tcase) {
		s := newSaga(t, ok)
		s.WaitResult = true
		if err := s.Submit(); err != nil {
			t.fatalf("submit: %v", err)
		}
		if *isDtm {
			expectFailure(t, "second submit of a finished saga", newSaga(t, ok).Submit())
		} else {
			// dtx: a retry is answered as the first Submit was; other
			// steps under the gid are a conflict (422), not FAILURE.
			if err := newSaga(t, ok).Submit(); err != nil {
				t.fatalf("second submit of a finished saga (a retry): %v", err)
			}
			other := dtmcli.NewSaga(*dtm, t.gid).Add(busi("TransOut"), busi("TransOutCompensate"), ok)
			err := other.Submit()
			if err == nil || strings.Contains(err.Error(), dtmcli.ResultFailure) ||
				!strings.Contains(err.Error(), "exists with 2 step(s), not 1") {
				t.fatalf("a saga with other steps under a finished saga's gid: want a conflict, not FAILURE, got %v", err)
			}
		}
		t.checkTrans(t.queryNow(), "saga", "succeed")
		if n := len(t.calls()); n != 2 {
			t.fatalf("http-busi saw %d calls, want 2 (the second submit must call nothing)", n)
		}
	}},
	{"tcc", func(t *tcase) {
		err := dtmcli.TccGlobalTransaction2(*dtm, t.gid, func(tcc *dtmcli.Tcc) {
			tcc.WaitResult = true
			tcc.BranchHeaders = map[string]string{"X-Compat-Case": "tcc"}
		}, tccBody(t, ok))
		if err != nil {
			t.fatalf("tcc: %v", err)
		}
		q := t.waitStatus("succeed")
		t.checkTrans(q, "tcc", "succeed")
		t.checkBranches(q, map[string]string{"01 confirm": "succeed", "01 cancel": "prepared",
			"02 confirm": "succeed", "02 cancel": "prepared"})
		calls := t.waitCalls(4)
		checkTryDtm(t, calls)
		// Confirms run last registered first, with the try's payload.
		t.checkCalls(calls, "tcc", mustJSON(ok), "tcc",
			want{"TransOutTry", "try", "01", 200}, want{"TransInTry", "try", "02", 200},
			want{"TransInConfirm", "confirm", "02", 200}, want{"TransOutConfirm", "confirm", "01", 200})
	}},
	{"tcc-cancel", func(t *tcase) {
		in := ok
		in.Fail = "TransInTry"
		err := dtmcli.TccGlobalTransaction(*dtm, t.gid, tccBody(t, in))
		if !errors.Is(err, dtmcli.ErrFailure) {
			t.fatalf("tcc: want the try's FAILURE, got %v", err)
		}
		q := t.waitStatus("failed")
		t.checkTrans(q, "tcc", "failed")
		t.checkBranches(q, map[string]string{"01 confirm": "prepared", "01 cancel": "succeed",
			"02 confirm": "prepared", "02 cancel": "succeed"})
		calls := t.waitCalls(4)
		checkTryDtm(t, calls)
		t.checkCalls(calls[:1], "tcc", mustJSON(ok), "", want{"TransOutTry", "try", "01", 200})
		t.checkCalls(calls[1:3], "tcc", mustJSON(in), "",
			want{"TransInTry", "try", "02", 409}, want{"TransInCancel", "cancel", "02", 200})
		t.checkCalls(calls[3:], "tcc", mustJSON(ok), "", want{"TransOutCancel", "cancel", "01", 200})
	}},
	{"msg", func(t *tcase) {
		m := dtmcli.NewMsg(*dtm, t.gid).Add(busi("TransOut"), ok).Add(busi("TransIn"), ok)
		m.BranchHeaders = map[string]string{"X-Compat-Case": "msg"}
		if err := m.Prepare(busi("QueryPrepared")); err != nil {
			t.fatalf("prepare: %v", err)
		}
		q := t.queryNow()
		t.checkTrans(q, "msg", "prepared")
		if q.Transaction.QueryPrepared != busi("QueryPrepared") {
			t.fatalf("query: query_prepared %q, want %q", q.Transaction.QueryPrepared, busi("QueryPrepared"))
		}
		if err := m.Submit(); err != nil {
			t.fatalf("submit: %v", err)
		}
		q = t.waitStatus("succeed")
		t.checkBranches(q, map[string]string{"01 action": "succeed", "02 action": "succeed"})
		t.checkCalls(t.waitCalls(2), "msg", mustJSON(ok), "msg",
			want{"TransOut", "action", "01", 200}, want{"TransIn", "action", "02", 200})
	}},
	{"msg-do-and-submit", func(t *tcase) {
		m := dtmcli.NewMsg(*dtm, t.gid).Add(busi("TransIn"), ok)
		err := m.DoAndSubmit(busi("QueryPrepared"), func(bb *dtmcli.BranchBarrier) error {
			if bb.Gid != t.gid || bb.BranchID != "00" || bb.Op != "msg" {
				t.fatalf("DoAndSubmit's barrier: %v", bb)
			}
			return nil
		})
		if err != nil {
			t.fatalf("DoAndSubmit: %v", err)
		}
		t.checkTrans(t.waitStatus("succeed"), "msg", "succeed")
		t.checkCalls(t.waitCalls(1), "msg", mustJSON(ok), "", want{"TransIn", "action", "01", 200})
	}},
	{"msg-do-checkback-commit", func(t *tcase) {
		// The local part fails with an unknown outcome: the SDK asks
		// QueryPrepared itself, which says it committed -> submit.
		setPrepared(t, dtmcli.ResultSuccess)
		m := dtmcli.NewMsg(*dtm, t.gid).Add(busi("TransIn"), ok)
		local := errors.New("local commit: connection lost")
		err := m.DoAndSubmit(busi("QueryPrepared"), func(*dtmcli.BranchBarrier) error { return local })
		if err != local {
			t.fatalf("DoAndSubmit: want the local error back, got %v", err)
		}
		t.checkTrans(t.waitStatus("succeed"), "msg", "succeed")
		calls := t.waitCalls(2)
		if calls[0].Query["dtm"] != *dtm {
			t.fatalf("the SDK's check-back: dtm=%q, want %q", calls[0].Query["dtm"], *dtm)
		}
		t.checkCalls(calls, "msg", mustJSON(ok), "",
			want{"QueryPrepared", "msg", "00", 200}, want{"TransIn", "action", "01", 200})
	}},
	{"msg-do-checkback-rollback", func(t *tcase) {
		setPrepared(t, dtmcli.ResultFailure)
		m := dtmcli.NewMsg(*dtm, t.gid).Add(busi("TransIn"), ok)
		local := errors.New("local commit: connection lost")
		if err := m.DoAndSubmit(busi("QueryPrepared"), func(*dtmcli.BranchBarrier) error { return local }); err != local {
			t.fatalf("DoAndSubmit: want the local error back, got %v", err)
		}
		q := t.waitStatus("failed")
		t.checkTrans(q, "msg", "failed")
		t.checkBranches(q, map[string]string{"01 action": "prepared"})
		t.checkCalls(t.calls(), "msg", "", "", want{"QueryPrepared", "msg", "00", 409})
	}},
	{"msg-do-failure", func(t *tcase) {
		// The local part answers FAILURE: abort at once, no check-back.
		m := dtmcli.NewMsg(*dtm, t.gid).Add(busi("TransIn"), ok)
		err := m.DoAndSubmit(busi("QueryPrepared"), func(*dtmcli.BranchBarrier) error { return dtmcli.ErrFailure })
		if !errors.Is(err, dtmcli.ErrFailure) {
			t.fatalf("DoAndSubmit: want FAILURE back, got %v", err)
		}
		t.checkTrans(t.waitStatus("failed"), "msg", "failed")
		t.checkCalls(t.calls(), "msg", "", "")
	}},
	{"msg-checkback-server", func(t *tcase) {
		// Prepared and left: after its TimeoutToFail (1 s) the coordinator
		// asks QueryPrepared (GET, op msg, branch 00), which says commit.
		setPrepared(t, dtmcli.ResultSuccess)
		m := dtmcli.NewMsg(*dtm, t.gid).Add(busi("TransIn"), ok)
		m.TimeoutToFail = 1
		m.RetryInterval = 1
		if err := m.Prepare(busi("QueryPrepared")); err != nil {
			t.fatalf("prepare: %v", err)
		}
		t.checkTrans(t.waitStatus("succeed"), "msg", "succeed")
		t.checkCalls(t.waitCalls(2), "msg", mustJSON(ok), "",
			want{"QueryPrepared", "msg", "00", 200}, want{"TransIn", "action", "01", 200})
	}},
	{"msg-checkback-server-rollback", func(t *tcase) {
		setPrepared(t, dtmcli.ResultFailure)
		m := dtmcli.NewMsg(*dtm, t.gid).Add(busi("TransIn"), ok)
		m.TimeoutToFail = 1
		m.RetryInterval = 1
		if err := m.Prepare(busi("QueryPrepared")); err != nil {
			t.fatalf("prepare: %v", err)
		}
		t.checkTrans(t.waitStatus("failed"), "msg", "failed")
		t.checkCalls(t.calls(), "msg", "", "", want{"QueryPrepared", "msg", "00", 409})
	}},
}

func runCase(name string, fn func(*tcase)) (passed bool) {
	t := &tcase{name: name}
	defer func() {
		if r := recover(); r != nil {
			f, isFailure := r.(failure)
			if !isFailure {
				f = failure{fmt.Sprint(r)}
			}
			fmt.Printf("FAIL %s gid=%s: %s\n", name, t.gid, f.msg)
			if t.lastQuery != "" {
				fmt.Printf("  last query answer: %s\n", t.lastQuery)
			}
			if t.lastCalls != "" {
				fmt.Printf("  calls http-busi saw: %s\n", t.lastCalls)
			}
			passed = false
		}
	}()
	t.gid = dtmcli.MustGenGid(*dtm)
	fn(t)
	fmt.Printf("OK %s gid=%s\n", name, t.gid)
	return true
}

func main() {
	flag.Parse()
	if *busiURL == "" {
		fmt.Println("FAIL -busi is required")
		os.Exit(2)
	}
	if *verbose {
		logger.InitLog2("debug", "stderr", 0, "")
	}
	filter := regexp.MustCompile(*run)
	failed, ran := 0, 0
	for _, c := range cases {
		if !filter.MatchString(c.name) {
			continue
		}
		ran++
		if !runCase(c.name, c.fn) {
			failed++
		}
	}
	fmt.Printf("%d passed, %d failed\n", ran-failed, failed)
	if failed > 0 || ran == 0 {
		os.Exit(1)
	}
}
