package redisproc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The cluster's shape: three masters with one replica each, the smallest
// that survives the loss of any one node with every slot still served.
const (
	ClusterMasters  = 3
	ClusterReplicas = 1 // per master
	ClusterSize     = ClusterMasters * (1 + ClusterReplicas)
	ClusterSlots    = 16384
)

// DefaultNodeTimeout is ClusterOptions.NodeTimeout when zero: short, so a
// failover completes in a few seconds.
const DefaultNodeTimeout = 2 * time.Second

// busOffset is how far above its port a node's cluster bus listens.
const busOffset = 10000

// ClusterOptions configures a Cluster.
type ClusterOptions struct {
	// Dir holds the nodes' files, node i's in Dir/node-<i>; it must exist.
	Dir string
	// NodeTimeout is cluster-node-timeout: how long a master may be
	// unreachable before its replica takes over. 0 means DefaultNodeTimeout.
	NodeTimeout time.Duration
	// AOF turns the append-only file on, fsync as AppendFsync says
	// ("everysec" when empty, or "always", "no"). Without it a killed node
	// restarts empty and resynchronises from its master.
	AOF         bool
	AppendFsync string
	// Args are further redis-server arguments for every node.
	Args []string
	// StartTimeout bounds each wait for the cluster to be healthy (start,
	// failover, restart) when the context has no earlier deadline; 0 means
	// 60 s.
	StartTimeout time.Duration
}

// Cluster is a Redis Cluster of ClusterSize redis-server processes on
// loopback, created by redis-cli --cluster create. Nodes are numbered
// 0..ClusterSize-1 for good; which of them are masters changes with
// failovers, so ask Topology or MasterOf.
type Cluster struct {
	opts  ClusterOptions
	mu    sync.Mutex
	nodes [ClusterSize]*clusterNode
}

type clusterNode struct {
	port int
	dir  string
	proc *Process // nil while killed
}

// StartCluster starts the nodes on free ports below 55536 (so that the bus
// port, port+10000, is valid and free too), creates the cluster and waits
// until every node says cluster_state:ok, every slot is served and every
// replica is in sync with its master. The error wraps ErrNotInstalled when
// redis-server or redis-cli is not on PATH. On error nothing is left
// running.
func StartCluster(ctx context.Context, o ClusterOptions) (c *Cluster, err error) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("redis-cli %w", ErrNotInstalled)
	}
	if o.NodeTimeout == 0 {
		o.NodeTimeout = DefaultNodeTimeout
	}
	if o.AppendFsync == "" {
		o.AppendFsync = "everysec"
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 60 * time.Second
	}
	c = &Cluster{opts: o}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	taken := map[int]bool{}
	for i := range c.nodes {
		n := &clusterNode{dir: filepath.Join(o.Dir, "node-"+strconv.Itoa(i))}
		if err := os.MkdirAll(n.dir, 0o700); err != nil {
			return nil, err
		}
		// A port can be taken between the probe and redis-server's bind:
		// try a few.
		for attempt := 0; ; attempt++ {
			if n.port, err = clusterPort(taken); err != nil {
				return nil, err
			}
			taken[n.port] = true
			if n.proc, err = Start(ctx, c.nodeOptions(n)); err == nil {
				break
			}
			if errors.Is(err, ErrNotInstalled) || attempt == 4 || ctx.Err() != nil {
				return nil, fmt.Errorf("cluster node %d: %w", i, err)
			}
		}
		c.nodes[i] = n
	}

	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(ClusterReplicas), "--cluster-yes")
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("redis-cli --cluster create: %v: %s", err, lastLines(string(out), 5))
	}
	if err := c.WaitHealthy(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Cluster) nodeOptions(n *clusterNode) Options {
	appendonly := "no"
	if c.opts.AOF {
		appendonly = "yes"
	}
	args := []string{
		"--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", strconv.FormatInt(c.opts.NodeTimeout.Milliseconds(), 10),
		"--appendonly", appendonly,
		"--appendfsync", c.opts.AppendFsync,
		// A replica syncs at once, not after the 5 s Redis waits by
		// default for more replicas to share a diskless transfer.
		"--repl-diskless-sync-delay", "0",
	}
	return Options{Dir: n.dir, Port: n.port, Args: append(args, c.opts.Args...)}
}

// clusterPort picks a port in [10000, 22767] whose bus port is free too.
// Both lie below Linux's ephemeral range (32768 up), so outgoing
// connections do not take them meanwhile, and below 55536 as the bus port
// must be.
func clusterPort(taken map[int]bool) (int, error) {
	for range 200 {
		p := 10000 + rand.IntN(12768)
		if taken[p] || taken[p+busOffset] || taken[p-busOffset] {
			continue
		}
		if listenable(p) && listenable(p+busOffset) {
			return p, nil
		}
	}
	return 0, errors.New("no free port pair (port, port+10000) in 10000-32767")
}

func listenable(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// Addrs are the host:port of every node, the seeds for a cluster client.
func (c *Cluster) Addrs() []string {
	a := make([]string, len(c.nodes))
	for i := range c.nodes {
		a[i] = c.Addr(i)
	}
	return a
}

// Addr is node i's host:port.
func (c *Cluster) Addr(i int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.nodes[i].port))
}

// Running says whether node i's process runs (it was not killed, or was
// restarted since).
func (c *Cluster) Running(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].proc != nil
}

// Kill SIGKILLs node i, as a crash would, and returns when it has exited;
// it does not wait for a failover (see KillMaster). Killing a killed node
// does nothing.
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	p := c.nodes[i].proc
	c.nodes[i].proc = nil
	c.mu.Unlock()
	if p != nil {
		p.Kill()
	}
}

// KillMaster SIGKILLs node i, which must be a master, and waits until one
// of its replicas has taken over its slots; it returns that replica.
func (c *Cluster) KillMaster(ctx context.Context, i int) (promoted int, err error) {
	top, err := c.Topology()
	if err != nil {
		return -1, err
	}
	if !top[i].Master || len(top[i].Slots) == 0 {
		return -1, fmt.Errorf("node %d (%s) is not a master serving slots", i, c.Addr(i))
	}
	var replicas []int
	for _, n := range top {
		if n.MasterIndex == i && n.Running {
			replicas = append(replicas, n.Index)
		}
	}
	if len(replicas) == 0 {
		return -1, fmt.Errorf("master %d (%s) has no running replica to take over", i, c.Addr(i))
	}
	slot := top[i].Slots[0][0]
	c.Kill(i)
	return c.waitOwner(ctx, slot, func(owner int) bool { return slices.Contains(replicas, owner) },
		fmt.Sprintf("one of node %d's replicas %v to take over", i, replicas))
}

// KillMasterOf SIGKILLs the master serving slot and waits until one of its
// replicas has taken over; it returns both.
func (c *Cluster) KillMasterOf(ctx context.Context, slot int) (killed, promoted int, err error) {
	if killed, err = c.MasterOf(slot); err != nil {
		return -1, -1, err
	}
	promoted, err = c.KillMaster(ctx, killed)
	return killed, promoted, err
}

// MasterOf is the node that serves slot, as a running node sees it.
func (c *Cluster) MasterOf(slot int) (int, error) {
	top, err := c.Topology()
	if err != nil {
		return -1, err
	}
	for _, n := range top {
		if n.serves(slot) {
			return n.Index, nil
		}
	}
	return -1, fmt.Errorf("no node serves slot %d", slot)
}

// Restart starts killed node i again on its port and directory and waits
// until the cluster is healthy with it: a former master comes back as a
// replica of the node that took over. Restarting a running node does
// nothing.
func (c *Cluster) Restart(ctx context.Context, i int) error {
	if c.Running(i) {
		return nil
	}
	ctx, cancel := c.bound(ctx)
	defer cancel()
	n := c.nodes[i]
	var p *Process
	var err error
	// The port may linger briefly after the old process exits.
	for {
		if p, err = Start(ctx, c.nodeOptions(n)); err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("restarting node %d: %w", i, err)
	}
	c.mu.Lock()
	n.proc = p
	c.mu.Unlock()
	return c.WaitHealthy(ctx)
}

// Stop kills every node. The cluster cannot be used afterwards.
func (c *Cluster) Stop() {
	for i := range c.nodes {
		if c.nodes[i] != nil {
			c.Kill(i)
		}
	}
}

// NodeState is one node as the cluster sees it.
type NodeState struct {
	Index   int
	Addr    string
	ID      string
	Running bool
	Master  bool
	// MasterIndex is a replica's master, -1 for a master.
	MasterIndex int
	// Slots are a master's slot ranges, first and last included.
	Slots [][2]int
	// Flags are CLUSTER NODES' flags other than myself/master/slave
	// (fail, fail?, handshake, noaddr…).
	Flags []string
}

func (n NodeState) serves(slot int) bool {
	for _, r := range n.Slots {
		if r[0] <= slot && slot <= r[1] {
			return true
		}
	}
	return false
}

// Topology is every node's state as the first running node sees it.
func (c *Cluster) Topology() ([]NodeState, error) {
	for i := range c.nodes {
		if c.Running(i) {
			return c.view(i)
		}
	}
	return nil, errors.New("no node runs")
}

// view parses CLUSTER NODES as node i sees it.
func (c *Cluster) view(i int) ([]NodeState, error) {
	s, err := DoString(c.Addr(i), "CLUSTER", "NODES")
	if err != nil {
		return nil, fmt.Errorf("node %d: CLUSTER NODES: %w", i, err)
	}
	byPort := map[int]int{}
	for j, n := range c.nodes {
		byPort[n.port] = j
	}
	top := make([]NodeState, len(c.nodes))
	for j := range top {
		top[j] = NodeState{Index: j, Addr: c.Addr(j), Running: c.Running(j), MasterIndex: -1}
	}
	masterOf := map[int]string{} // replica index → master ID
	idx := map[string]int{}      // ID → index
	for line := range strings.SplitSeq(strings.TrimSpace(s), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		hostport, _, _ := strings.Cut(f[1], "@")
		_, ps, _ := net.SplitHostPort(hostport)
		port, _ := strconv.Atoi(ps)
		j, ok := byPort[port]
		if !ok {
			continue // a node in handshake, with no address yet
		}
		n := &top[j]
		n.ID = f[0]
		idx[f[0]] = j
		for flag := range strings.SplitSeq(f[2], ",") {
			switch flag {
			case "myself":
			case "master":
				n.Master = true
			case "slave":
				masterOf[j] = f[3]
			default:
				n.Flags = append(n.Flags, flag)
			}
		}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				continue // a slot being migrated
			}
			lo, hi, found := strings.Cut(r, "-")
			a, _ := strconv.Atoi(lo)
			b := a
			if found {
				b, _ = strconv.Atoi(hi)
			}
			n.Slots = append(n.Slots, [2]int{a, b})
		}
	}
	for j, id := range masterOf {
		if m, ok := idx[id]; ok {
			top[j].MasterIndex = m
		}
	}
	return top, nil
}

// WaitHealthy waits until, on every running node, cluster_state is ok and
// all 16384 slots are served, all running nodes agree on who is master of
// what, none of them is flagged failing, every master that runs serves
// slots and every running replica's link to its master is up.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	return c.poll(ctx, "the cluster to be healthy", c.healthy)
}

func (c *Cluster) healthy() error {
	views, err := c.views()
	if err != nil {
		return err
	}
	var want string
	for i, top := range views {
		if top == nil {
			continue
		}
		var roles []string
		for _, n := range top {
			if !n.Running {
				continue
			}
			if len(n.Flags) > 0 {
				return fmt.Errorf("node %d sees node %d as %v", i, n.Index, n.Flags)
			}
			if n.Master != (len(n.Slots) > 0) {
				return fmt.Errorf("node %d sees node %d as master=%v with %d slot ranges", i, n.Index, n.Master, len(n.Slots))
			}
			roles = append(roles, fmt.Sprintf("%d:%v:%d:%v", n.Index, n.Master, n.MasterIndex, n.Slots))
		}
		got := strings.Join(roles, " ")
		if want == "" {
			want = got
		} else if got != want {
			return fmt.Errorf("nodes disagree: %s / %s", want, got)
		}
		if !top[i].Master {
			info, err := DoString(c.Addr(i), "INFO", "replication")
			if err != nil {
				return err
			}
			if !strings.Contains(info, "master_link_status:up") {
				return fmt.Errorf("replica %d not in sync with its master yet", i)
			}
		}
	}
	return nil
}

// views is every running node's view of the cluster (nil for the others),
// once each of them says the cluster is ok.
func (c *Cluster) views() ([][]NodeState, error) {
	views := make([][]NodeState, len(c.nodes))
	for i := range c.nodes {
		if !c.Running(i) {
			continue
		}
		if err := c.stateOK(i); err != nil {
			return nil, err
		}
		var err error
		if views[i], err = c.view(i); err != nil {
			return nil, err
		}
	}
	return views, nil
}

// stateOK checks node i's CLUSTER INFO: state ok, every slot served.
func (c *Cluster) stateOK(i int) error {
	info, err := DoString(c.Addr(i), "CLUSTER", "INFO")
	if err != nil {
		return fmt.Errorf("node %d: CLUSTER INFO: %w", i, err)
	}
	for _, want := range []string{"cluster_state:ok", "cluster_slots_ok:" + strconv.Itoa(ClusterSlots)} {
		if !strings.Contains(info, want+"\r\n") {
			return fmt.Errorf("node %d: CLUSTER INFO lacks %s", i, want)
		}
	}
	return nil
}

// waitOwner waits until every running node says cluster_state:ok and
// agrees that slot is served by one running node that sees itself as its
// master and for which accept holds; it returns that node.
func (c *Cluster) waitOwner(ctx context.Context, slot int, accept func(int) bool, what string) (int, error) {
	owner := -1
	err := c.poll(ctx, what, func() error {
		owner = -1
		views, err := c.views()
		if err != nil {
			return err
		}
		for i, top := range views {
			if top == nil {
				continue
			}
			o := -1
			for _, n := range top {
				if n.serves(slot) {
					o = n.Index
				}
			}
			switch {
			case o < 0 || !accept(o) || !c.Running(o):
				return fmt.Errorf("node %d sees slot %d served by node %d", i, slot, o)
			case owner >= 0 && o != owner:
				return fmt.Errorf("nodes disagree on slot %d: node %d or %d", slot, owner, o)
			}
			owner = o
		}
		if owner < 0 {
			return errors.New("no node runs")
		}
		if self := views[owner]; self == nil || !self[owner].Master {
			return fmt.Errorf("node %d does not see itself as master yet", owner)
		}
		return nil
	})
	if err != nil {
		return -1, err
	}
	return owner, nil
}

// poll calls check until it returns nil, giving up with its last error at
// the context's deadline or StartTimeout.
func (c *Cluster) poll(ctx context.Context, what string, check func() error) error {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %v)", what, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Cluster) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.opts.StartTimeout)
}

// KeySlot is the cluster slot of key: CRC16 of its hash tag ({…}) or of the
// whole key, modulo 16384.
func KeySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % ClusterSlots
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}
