// wf-http-app: dtm's Go workflow SDK over HTTP (workflow.InitHTTP) against a
// coordinator's HTTP API (dtx-server), its steps HTTP calls of cmd/http-busi
// made with wf.NewRequest(). It serves dtm's HTTP resume callback
// (POST /workflow/resume, workflow.ExecuteByQS) as a Go application does, and
// runs:
//
//	wf-http-ok        TransOut then TransIn; run again, the recorded result
//	wf-http-rollback  TransIn answers 409 FAILURE: TransOut's rollback runs
//	wf-http-resume    TransIn answers 425 ONGOING once; the coordinator posts
//	                  the callback when the workflow is due and it finishes
//	                  there, TransOut replayed (not called again)
//
//	wf-http-app -dtm http://127.0.0.1:<port>/api/dtmsvr -busi http://127.0.0.1:<port>
//
// Prints "OK <case> gid=<gid>" per case; exits non-zero with a message when
// an answer is not dtm's.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/dtm-labs/client/dtmcli"
	"github.com/dtm-labs/client/workflow"
	"github.com/go-resty/resty/v2"
)

var (
	dtm  = flag.String("dtm", "", "the coordinator's HTTP API")
	busi = flag.String("busi", "", "http-busi's base URL")
)

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL "+format+"\n", args...)
	os.Exit(1)
}

// calls: the handlers http-busi saw for gid, with their HTTP status.
func calls(gid string) map[string][]int {
	resp, err := resty.New().R().SetQueryParam("gid", gid).Get(*busi + "/api/ctl/calls")
	if err != nil || resp.StatusCode() != 200 {
		fail("http-busi calls of %s: %v %v", gid, err, resp)
	}
	var list []struct {
		Handler string `json:"handler"`
		Status  int    `json:"status"`
	}
	if err := json.Unmarshal(resp.Body(), &list); err != nil {
		fail("http-busi calls of %s: %v", gid, err)
	}
	out := map[string][]int{}
	for _, c := range list {
		out[c.Handler] = append(out[c.Handler], c.Status)
	}
	return out
}

func main() {
	flag.Parse()
	if *dtm == "" || *busi == "" {
		fail("usage: wf-http-app -dtm URL -busi URL")
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("listen: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/workflow/resume", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		err := workflow.ExecuteByQS(r.URL.Query(), body)
		code := http.StatusOK
		switch {
		case err == nil:
		case errors.Is(err, dtmcli.ErrFailure):
			code = http.StatusConflict
		case errors.Is(err, dtmcli.ErrOngoing):
			code = http.StatusTooEarly
		default:
			code = http.StatusInternalServerError
		}
		w.WriteHeader(code)
		if err != nil {
			_, _ = w.Write([]byte(err.Error()))
		}
	})
	go func() { _ = http.Serve(lis, mux) }()
	workflow.InitHTTP(*dtm, "http://"+lis.Addr().String()+"/workflow/resume")

	resumed := make(chan struct{}, 1)
	transfer := func(wf *workflow.Workflow, data []byte) ([]byte, error) {
		wf.NewBranch().OnRollback(func(bb *dtmcli.BranchBarrier) error {
			_, err := wf.NewRequest().SetBody(data).Post(*busi + "/api/busi/TransOutCompensate")
			return err
		})
		if _, err := wf.NewRequest().SetBody(data).Post(*busi + "/api/busi/TransOut"); err != nil {
			return nil, err
		}
		wf.NewBranch().OnRollback(func(bb *dtmcli.BranchBarrier) error {
			_, err := wf.NewRequest().SetBody(data).Post(*busi + "/api/busi/TransInCompensate")
			return err
		})
		if _, err := wf.NewRequest().SetBody(data).Post(*busi + "/api/busi/TransIn"); err != nil {
			return nil, err
		}
		if wf.Gid == "wf-http-resume" {
			select {
			case resumed <- struct{}{}:
			default:
			}
		}
		return []byte("moved"), nil
	}
	if err := workflow.Register2("transfer", transfer, func(wf *workflow.Workflow) {
		wf.RetryInterval = 1 // resumed 1 s after it was started
	}); err != nil {
		fail("register: %v", err)
	}

	// wf-http-ok
	res, err := workflow.Execute2("transfer", "wf-http-ok", []byte(`{}`))
	if err != nil || string(res) != "moved" {
		fail("wf-http-ok: %q, %v", res, err)
	}
	if res, err = workflow.Execute2("transfer", "wf-http-ok", []byte(`{}`)); err != nil || string(res) != "moved" {
		fail("wf-http-ok again: %q, %v", res, err)
	}
	if c := calls("wf-http-ok"); len(c["TransOut"]) != 1 || len(c["TransIn"]) != 1 {
		fail("wf-http-ok: calls %v", c)
	}
	fmt.Println("OK wf-http-ok gid=wf-http-ok")

	// wf-http-rollback
	_, err = workflow.Execute2("transfer", "wf-http-rollback", []byte(`{"fail":"TransIn"}`))
	if !errors.Is(err, dtmcli.ErrFailure) {
		fail("wf-http-rollback: want FAILURE, got %v", err)
	}
	if c := calls("wf-http-rollback"); len(c["TransOutCompensate"]) != 1 || len(c["TransInCompensate"]) != 0 {
		fail("wf-http-rollback: calls %v", c)
	}
	fmt.Println("OK wf-http-rollback gid=wf-http-rollback")

	// wf-http-resume
	_, err = workflow.Execute2("transfer", "wf-http-resume", []byte(`{"ongoing":"TransIn"}`))
	if !errors.Is(err, dtmcli.ErrOngoing) {
		fail("wf-http-resume: want ONGOING, got %v", err)
	}
	select {
	case <-resumed:
	case <-time.After(30 * time.Second):
		fail("wf-http-resume: the coordinator did not call the workflow back within 30 s")
	}
	for i := 0; ; i++ {
		res, err = workflow.Execute2("transfer", "wf-http-resume", []byte(`{"ongoing":"TransIn"}`))
		if err == nil || i == 100 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || string(res) != "moved" {
		fail("wf-http-resume after the callback: %q, %v", res, err)
	}
	if c := calls("wf-http-resume"); len(c["TransOut"]) != 1 || len(c["TransIn"]) != 2 {
		fail("wf-http-resume: calls %v", c)
	}
	fmt.Println("OK wf-http-resume gid=wf-http-resume")
}
