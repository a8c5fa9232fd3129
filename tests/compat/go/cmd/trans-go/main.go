// trans-go: the `trans` service of dtm's Kratos example written with
// go-kratos itself (its gRPC transport and its etcd registry), so that dtx is
// tested against a real Kratos service. Every handler reads dtx's metadata
// with dtm's own SDK (dtmgrpc.BarrierFromGrpc): if dtx sent anything dtm's
// SDK does not accept, the call fails and the test sees it.
//
//	trans-go -etcd 127.0.0.1:2379 [-name trans]
//
// Prints "listening on 127.0.0.1:<port>" and "registered as <name>"; logs one
// line per call: "<what> gid=<gid> trans_type=<t> branch_id=<b> op=<op>".
// An Amount of 4000 is refused with codes.Aborted (dtm's FAILURE).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"strings"
	"time"

	"github.com/dtm-labs/client/dtmgrpc"
	etcdregistry "github.com/go-kratos/kratos/contrib/registry/etcd/v2"
	"github.com/go-kratos/kratos/v2"
	kgrpc "github.com/go-kratos/kratos/v2/transport/grpc"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "dtx.test/compat/api/trans/v1"
)

type trans struct {
	pb.UnimplementedTransServer
}

func (trans) handle(ctx context.Context, what string, in *pb.AdjustInfo) (*pb.Response, error) {
	b, err := dtmgrpc.BarrierFromGrpc(ctx)
	if err != nil {
		log.Printf("BAD-METADATA %s: %v", what, err)
		return nil, status.Errorf(codes.InvalidArgument, "dtm metadata: %v", err)
	}
	if b.Gid == "" || b.TransType == "" || b.BranchID == "" || b.Op == "" {
		log.Printf("BAD-METADATA %s: %+v", what, b)
		return nil, status.Errorf(codes.InvalidArgument, "incomplete dtm metadata %+v", b)
	}
	line := fmt.Sprintf(what, in.Amount, in.UserID)
	log.Printf("%s gid=%s trans_type=%s branch_id=%s op=%s", line, b.Gid, b.TransType, b.BranchID, b.Op)
	if in.Amount == 4000 && !strings.Contains(what, "revert") && !strings.Contains(what, "cancel") {
		return nil, status.Error(codes.Aborted, "FAILURE: amount 4000 is refused")
	}
	return &pb.Response{}, nil
}

func (t trans) TransIn(ctx context.Context, in *pb.AdjustInfo) (*pb.Response, error) {
	return t.handle(ctx, "transfer in %d cents to %d", in)
}
func (t trans) TransInConfirm(ctx context.Context, in *pb.AdjustInfo) (*pb.Response, error) {
	return t.handle(ctx, "confirm transfer in %d cents to %d", in)
}
func (t trans) TransInCancel(ctx context.Context, in *pb.AdjustInfo) (*pb.Response, error) {
	return t.handle(ctx, "cancel transfer in %d cents to %d", in)
}
func (t trans) TransInRevert(ctx context.Context, in *pb.AdjustInfo) (*pb.Response, error) {
	return t.handle(ctx, "revert transfer in %d cents to %d", in)
}
func (t trans) TransOut(ctx context.Context, in *pb.AdjustInfo) (*pb.Response, error) {
	return t.handle(ctx, "transfer out %d cents from %d", in)
}
func (t trans) TransOutConfirm(ctx context.Context, in *pb.AdjustInfo) (*pb.Response, error) {
	return t.handle(ctx, "confirm transfer out %d cents from %d", in)
}
func (t trans) TransOutCancel(ctx context.Context, in *pb.AdjustInfo) (*pb.Response, error) {
	return t.handle(ctx, "cancel transfer out %d cents from %d", in)
}
func (t trans) TransOutRevert(ctx context.Context, in *pb.AdjustInfo) (*pb.Response, error) {
	return t.handle(ctx, "revert transfer out %d cents from %d", in)
}
func (t trans) QueryPrepared(ctx context.Context, in *pb.AdjustInfo) (*pb.Response, error) {
	// The local transaction of every message in these tests committed.
	return t.handle(ctx, "query prepared %d cents for %d", in)
}

func main() {
	etcd := flag.String("etcd", "127.0.0.1:2379", "etcd endpoints, comma-separated")
	name := flag.String("name", "trans", "service name to register")
	flag.Parse()
	log.SetOutput(os.Stdout)
	log.SetFlags(log.Ldate | log.Ltime)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	srv := kgrpc.NewServer(kgrpc.Listener(lis), kgrpc.Address(lis.Addr().String()))
	pb.RegisterTransServer(srv, trans{})

	client, err := clientv3.New(clientv3.Config{
		Endpoints:   strings.Split(*etcd, ","),
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		log.Fatalf("etcd: %v", err)
	}
	app := kratos.New(
		kratos.Name(*name),
		kratos.Server(srv),
		kratos.Registrar(etcdregistry.New(client)),
	)
	fmt.Printf("listening on %s\n", lis.Addr().String())
	go func() {
		// kratos registers once its servers run; report it for the tests.
		for i := 0; i < 200; i++ {
			resp, err := client.Get(context.Background(), "/microservices/"+*name+"/"+app.ID())
			if err == nil && len(resp.Kvs) > 0 {
				fmt.Printf("registered as %s\n", *name)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		log.Printf("not registered after 10 s")
	}()
	if err := app.Run(); err != nil {
		log.Fatalf("run: %v", err)
	}
}
