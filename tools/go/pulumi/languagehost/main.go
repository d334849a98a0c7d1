// Command pulumi-language-nodejs is vault-raft-backup's minimal stand-in for Pulumi's Node.js
// language host.
//
// Pulumi's own host (github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3) is not
// served by the Go module proxy, so the kit cannot build it from pinned modules. This program
// implements just enough of the LanguageRuntime gRPC service for `pulumi preview`, `up`,
// `refresh` and `destroy` of a JavaScript project (`runtime.options.typescript: false`, the
// program compiled beforehand): it starts the Node.js SDK's own program runner
// (`@pulumi/pulumi/cmd/run`, found from the program's directory) with the flags and environment
// that runner reads, and reports its exit. Everything else in a deployment is Pulumi's: the CLI,
// the engine, the state and its secrets encryption, the SDK runtime in the program (closure
// serialization of dynamic providers) and the dynamic-provider host.
//
// It does not install dependencies, report package versions, generate code or run plugins:
// those calls answer Unimplemented, and GetRequiredPackages reports no provider packages (the
// providers this kit's programs may name are either Pulumi's built-in dynamic-provider host or
// not installable here).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
)

// version is reported by GetPluginInfo: the SDK version this host is built with (go.mod pins it).
const version = "3.248.0"

// exitLoggedError is the Node.js runner's exit code after it has already reported the program's
// error to the engine (cmd/run/index.js: nodeJSProcessExitedAfterLoggingUserActionableMessage).
const exitLoggedError = 32

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	engineAddress string

	mu       sync.Mutex
	programs map[*os.Process]struct{}
}

// track records a running Node.js program (nil: forget it) so an orphaned host can stop it.
func (h *host) track(p *os.Process, running bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if running {
		h.programs[p] = struct{}{}
	} else {
		delete(h.programs, p)
	}
}

// exitWhenOrphaned stops the running programs and this host once the engine that started it is
// gone (e.g. the CLI was killed): plugins are not otherwise told, and would run on.
func (h *host) exitWhenOrphaned() {
	parent := os.Getppid()
	for range time.Tick(time.Second) {
		if os.Getppid() == parent {
			continue
		}
		h.mu.Lock()
		for p := range h.programs {
			_ = p.Kill()
		}
		h.mu.Unlock()
		os.Exit(1)
	}
}

func (h *host) Handshake(_ context.Context, req *pulumirpc.LanguageHandshakeRequest) (*pulumirpc.LanguageHandshakeResponse, error) {
	if req.GetEngineAddress() != "" {
		h.engineAddress = req.GetEngineAddress()
	}
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

// GetRequiredPlugins and GetRequiredPackages: no provider plugin is demanded up front. The
// engine still loads the provider of every resource the program registers (for dynamic
// resources, pulumi-resource-pulumi-nodejs from PATH); a program that registers a resource of a
// provider that is not installed fails at that resource, naming it.
func (h *host) GetRequiredPlugins(context.Context, *pulumirpc.GetRequiredPluginsRequest) (*pulumirpc.GetRequiredPluginsResponse, error) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}

func (h *host) GetRequiredPackages(context.Context, *pulumirpc.GetRequiredPackagesRequest) (*pulumirpc.GetRequiredPackagesResponse, error) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

func (h *host) GetProgramDependencies(context.Context, *pulumirpc.GetProgramDependenciesRequest) (*pulumirpc.GetProgramDependenciesResponse, error) {
	return &pulumirpc.GetProgramDependenciesResponse{}, nil
}

func (h *host) RuntimeOptionsPrompts(context.Context, *pulumirpc.RuntimeOptionsRequest) (*pulumirpc.RuntimeOptionsResponse, error) {
	return &pulumirpc.RuntimeOptionsResponse{}, nil
}

func (h *host) About(context.Context, *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, errors.New("node is not on PATH")
	}
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --version: %w", node, err)
	}
	return &pulumirpc.AboutResponse{Executable: node, Version: strings.TrimPrefix(strings.TrimSpace(string(out)), "v")}, nil
}

// programPaths returns the program's working directory and its entry point (a file or a
// directory), from the request's program info (newer engines) or its deprecated fields.
func programPaths(req *pulumirpc.RunRequest) (pwd, program string) {
	pwd = req.GetPwd()
	if info := req.GetInfo(); info != nil && info.GetProgramDirectory() != "" {
		pwd = info.GetProgramDirectory()
		program = filepath.Join(info.GetProgramDirectory(), info.GetEntryPoint())
		return pwd, program
	}
	program = req.GetProgram()
	if program == "" {
		program = "."
	}
	if !filepath.IsAbs(program) {
		program = filepath.Join(pwd, program)
	}
	return pwd, program
}

// findRunner finds the Node.js SDK's program runner the way Node resolves a package: in
// node_modules of the program's directory or of any directory above it.
func findRunner(from string) (string, error) {
	dir, err := filepath.Abs(from)
	if err != nil {
		return "", err
	}
	for {
		candidate := filepath.Join(dir, "node_modules", "@pulumi", "pulumi", "cmd", "run", "index.js")
		if _, err := os.Stat(candidate); err == nil {
			return filepath.Dir(candidate), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("@pulumi/pulumi is not installed for %s (no node_modules/@pulumi/pulumi in it or above it): run npm install", from)
		}
		dir = parent
	}
}

// typeScript reports the project's `runtime.options.typescript` (Pulumi's default: true).
func typeScript(req *pulumirpc.RunRequest) bool {
	if opts := req.GetInfo().GetOptions(); opts != nil {
		if v, ok := opts.GetFields()["typescript"]; ok {
			return v.GetBoolValue()
		}
	}
	return true
}

func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	pwd, program := programPaths(req)
	runner, err := findRunner(filepath.Dir(program))
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}

	// The flags the runner reads (cmd/run/index.js), then the program and its arguments.
	args := []string{runner,
		"--monitor=" + req.GetMonitorAddress(),
		"--project=" + req.GetProject(),
		"--stack=" + req.GetStack(),
		"--pwd=" + pwd,
	}
	if h.engineAddress != "" {
		args = append(args, "--engine="+h.engineAddress)
	}
	if req.GetOrganization() != "" {
		args = append(args, "--organization="+req.GetOrganization())
	}
	if root := req.GetInfo().GetRootDirectory(); root != "" {
		args = append(args, "--root-directory="+root)
	}
	if req.GetDryRun() {
		args = append(args, "--dry-run")
	}
	if req.GetParallel() > 1 {
		args = append(args, "--parallel="+strconv.Itoa(int(req.GetParallel())))
	}
	args = append(args, program)
	args = append(args, req.GetArgs()...)

	// Config reaches the SDK as JSON in the environment (runtime/config.js), secret keys beside it.
	config, err := json.Marshal(req.GetConfig())
	if err != nil {
		return nil, err
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	secretJSON, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, err
	}
	env := append(os.Environ(),
		"PULUMI_CONFIG="+string(config),
		"PULUMI_CONFIG_SECRET_KEYS="+string(secretJSON),
		"PULUMI_NODEJS_TYPESCRIPT="+strconv.FormatBool(typeScript(req)),
	)

	cmd := exec.CommandContext(ctx, "node", args...)
	cmd.Dir = pwd
	cmd.Env = env
	// The program's console output goes where this plugin's goes: the CLI shows it.
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	err = cmd.Start()
	if err == nil {
		h.track(cmd.Process, true)
		err = cmd.Wait()
		h.track(cmd.Process, false)
	}
	if err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			return &pulumirpc.RunResponse{Error: fmt.Sprintf("could not start node: %v", err)}, nil
		}
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return &pulumirpc.RunResponse{Error: fmt.Sprintf("the Node.js program was killed by %v", ws.Signal())}, nil
		}
		if exit.ExitCode() == exitLoggedError {
			// The runner already reported the error to the engine: stop without another message.
			return &pulumirpc.RunResponse{Bail: true}, nil
		}
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("the Node.js program exited with code %d", exit.ExitCode())}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}

func main() {
	// The engine starts a language plugin as `pulumi-language-nodejs [flags] <engine address>`:
	// the address is always the last argument.
	h := &host{programs: map[*os.Process]struct{}{}}
	go h.exitWhenOrphaned()
	if n := len(os.Args); n > 1 && !strings.HasPrefix(os.Args[n-1], "-") {
		h.engineAddress = os.Args[n-1]
	}
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(s *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(s, h)
			return nil
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: %v\n", err)
		os.Exit(1)
	}
	// Plugins announce their port as the first line of stdout.
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: %v\n", err)
		os.Exit(1)
	}
}
