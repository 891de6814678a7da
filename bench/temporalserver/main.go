// Command temporalserver runs a Temporal server the way `temporal server
// start-dev` does (every service in one process, SQLite in memory, one
// history shard, the dev server's dynamic config, no UI) for the bench's
// Temporal peer. It is its own module because go.temporal.io/server
// v1.32.1 builds only against go.temporal.io/api v1.63.x while the bench's
// client, go.temporal.io/sdk v1.51.0, needs v1.64.x.
//
// It prints "ready HOST:PORT" once the frontend serves, answers "cpu" on
// stdin with its own CPU seconds (user + system, every thread), and stops
// when stdin closes.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
)

func main() {
	ip := flag.String("ip", "127.0.0.1", "address every service binds to")
	namespace := flag.String("namespace", "default", "the namespace to create")
	level := flag.String("log-level", "error", "server log level (to stderr)")
	flag.Parse()
	srv, addr, err := start(*ip, *namespace, *level)
	if err != nil {
		fmt.Fprintln(os.Stderr, "temporalserver:", err)
		os.Exit(1)
	}
	fmt.Println("ready " + addr)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "cpu":
			b, _ := json.Marshal(map[string]float64{"cpu": processCPU()})
			fmt.Println(string(b))
		default:
			fmt.Println("unknown")
		}
	}
	srv.Stop()
}

// start builds the dev server's configuration (temporalio/cli's
// internal/devserver, with no database file) and starts every service.
func start(ip, namespace, level string) (temporal.Server, string, error) {
	ports := make([]int, 4)
	for i := range ports {
		p, err := freePort(ip)
		if err != nil {
			return nil, "", err
		}
		ports[i] = p
	}
	frontend := net.JoinHostPort(ip, strconv.Itoa(ports[0]))
	const clusterName = "active"

	var conf config.Config
	conf.Global.Membership.MaxJoinDuration = 30 * time.Second
	conf.Global.Membership.BroadcastAddress = ip
	// In memory, as the dev server runs without --db-filename: every
	// connection shares one database named at random.
	sqlConf := &config.SQL{PluginName: sqliteplugin.PluginName,
		ConnectAttributes: map[string]string{"mode": "memory", "cache": "shared"},
		DatabaseName:      strconv.Itoa(rand.IntN(9999999))}
	ns, err := sqliteschema.NewNamespaceConfig(clusterName, namespace, false, nil)
	if err != nil {
		return nil, "", fmt.Errorf("namespace %q: %w", namespace, err)
	}
	if err := sqliteschema.CreateNamespaces(sqlConf, ns); err != nil {
		return nil, "", fmt.Errorf("creating namespace %q in SQLite: %w", namespace, err)
	}
	conf.Persistence.DefaultStore = "sqlite-default"
	conf.Persistence.VisibilityStore = "sqlite-default"
	conf.Persistence.NumHistoryShards = 1
	conf.Persistence.DataStores = map[string]config.DataStore{"sqlite-default": {SQL: sqlConf}}
	conf.ClusterMetadata = &cluster.Config{
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{clusterName: {
			Enabled: true, InitialFailoverVersion: 1, RPCAddress: frontend,
			ClusterID: fmt.Sprintf("bench-%d", rand.Int64()),
		}},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	svc := func(port int) config.Service {
		var s config.Service
		s.RPC.GRPCPort = port
		s.RPC.BindOnIP = ip
		return s
	}
	conf.Services = map[string]config.Service{
		string(primitives.FrontendService): svc(ports[0]),
		string(primitives.HistoryService):  svc(ports[1]),
		string(primitives.MatchingService): svc(ports[2]),
		string(primitives.WorkerService):   svc(ports[3]),
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	conf.PublicClient.HostPort = frontend

	logger := log.NewZapLogger(log.BuildZapLogger(log.Config{Level: level}))
	authorizer, err := authorization.GetAuthorizerFromConfig(&conf.Global.Authorization)
	if err != nil {
		return nil, "", fmt.Errorf("authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&conf.Global.Authorization, logger)
	if err != nil {
		return nil, "", fmt.Errorf("claim mapper: %w", err)
	}
	// The dev server's dynamic config: its own two values plus the CLI's
	// defaults (search-attribute cache off, persistence QPS raised to match).
	dyn := dynamicconfig.StaticClient{
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key():                        8096,
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key():        100,
		dynamicconfig.MakeKey("system.forceSearchAttributesCacheRefreshOnRead"): true,
		dynamicconfig.MakeKey("frontend.persistenceMaxQPS"):                     10000,
		dynamicconfig.MakeKey("history.persistenceMaxQPS"):                      45000,
	}
	hosts := map[primitives.ServiceName]static.Hosts{}
	for name, s := range conf.Services {
		hosts[primitives.ServiceName(name)] = static.SingleLocalHost(net.JoinHostPort("127.0.0.1", strconv.Itoa(s.RPC.GRPCPort)))
	}
	srv, err := temporal.NewServer(
		temporal.WithConfig(&conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dyn),
	)
	if err != nil {
		return nil, "", fmt.Errorf("building the server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, "", fmt.Errorf("starting the server: %w", err)
	}
	return srv, frontend, nil
}

// freePort asks the kernel for a port that is free now (the dev server's
// MustGetFreePort does the same).
func freePort(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, fmt.Errorf("finding a free port on %s: %w", ip, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func processCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
