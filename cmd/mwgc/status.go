package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/mwgc/mwgc/runtime/clusterview"
)

// defaultAgent is mwgc-agent's default listener.
const defaultAgent = "127.0.0.1:9792"

func init() {
	commands["status"] = &command{
		synopsis: "mwgc status [-o text|json] [ADDR]",
		about: `Reads /status from the mwgc-agent at ADDR (host, host:port or a URL;
default 127.0.0.1:9792, the agent's loopback listener) and prints what
its cluster page shows: on the Active director every node with its state
and its running plan digest against the one compiled for it, the VIP
holder, alarms, the last reload; on another node the node itself and who
is Active. -o json prints the document as the agent sent it. Exit status
0, 1 when there are alarms, 2 when the agent cannot be read.`,
		setup: statusFlags,
	}
}

func statusFlags(fs *flag.FlagSet) func([]string, io.Writer, io.Writer) (int, error) {
	format := fs.String("o", "text", "output `format`: text or json")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the agent")
	return func(args []string, stdout, _ io.Writer) (int, error) {
		if *format != "text" && *format != "json" {
			return 2, fmt.Errorf("%w: -o %q: want text or json", errUsage, *format)
		}
		if len(args) > 1 {
			return 2, fmt.Errorf("%w: status takes one ADDR", errUsage)
		}
		addr := defaultAgent
		if len(args) == 1 {
			addr = args[0]
		}
		url, err := statusURL(addr)
		if err != nil {
			return 2, fmt.Errorf("%w: %v", errUsage, err)
		}
		body, err := fetch(url, *timeout)
		if err != nil {
			return 2, err
		}
		if *format == "json" {
			_, err := stdout.Write(body)
			return 0, err
		}
		v, err := clusterview.Parse(body, time.Now())
		if err != nil {
			return 2, fmt.Errorf("%s: %w", url, err)
		}
		if err := clusterview.WriteText(stdout, v); err != nil {
			return 2, err
		}
		for _, a := range v.Alarms {
			if a.Severity == "alarm" {
				return 1, nil
			}
		}
		return 0, nil
	}
}

// statusURL turns host, host:port or a URL into the agent's /status URL.
func statusURL(addr string) (string, error) {
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return strings.TrimSuffix(strings.TrimSuffix(addr, "/status"), "/") + "/status", nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(strings.Trim(addr, "[]"), "9792")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return "", fmt.Errorf("ADDR %q: want host, host:port or a URL", addr)
	}
	return "http://" + net.JoinHostPort(host, port) + "/status", nil
}

func fetch(url string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot read the agent's status: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, clusterview.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}
