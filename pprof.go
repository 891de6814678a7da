package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// checkPprofAddr refuses a --pprof address that is not loopback.
func checkPprofAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--pprof %q: %v (want a loopback host:port, e.g. 127.0.0.1:6060)", addr, err)
	}
	if !isLoopback(host) {
		return fmt.Errorf("--pprof %q: profiles are served on loopback addresses only (127.0.0.1, ::1, localhost); reach them over SSH or kubectl port-forward", addr)
	}
	return nil
}

// startPprof serves net/http/pprof on addr (checked by checkPprofAddr) for
// profiles of a running process (`go tool pprof
// http://127.0.0.1:6060/debug/pprof/profile?seconds=30`). It has a mux of
// its own, so nothing reaches the API's listener, and it is off unless
// --pprof is given: a profile shows workflow names and can cost a core.
func startPprof(addr string, log *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("pprof server stopped", "err", err)
		}
	}()
	log.Info("pprof serving", "addr", "http://"+ln.Addr().String()+"/debug/pprof/")
	return srv, nil
}
