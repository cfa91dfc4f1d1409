// Package pluginhost discovers, launches and supervises channel plugin
// processes, and hands the rest of the gateway an sdk.Channel per plugin.
//
// # Discovery
//
// Every subdirectory of the plugins directory (dot entries skipped) is one
// plugin: <dir>/<name>/plugin.json (see Manifest) plus the executable it
// names. A plugin with a bad manifest, a missing executable or an
// unsupported protocol version is logged and reported as failed; the
// gateway keeps running without it. The executable's SHA-256 is checked by
// go-plugin right before every exec, so a binary replaced after discovery is
// refused too (also reported as failed). As go-plugin warns, that check is
// only as good as the directory's permissions: nobody but the gateway's
// operator may be able to write there.
//
// # Launch
//
// Each process start uses a new plugin.Client (a Client cannot be restarted,
// hashicorp/go-plugin#305): gRPC only, automatic mutual TLS, the plugin's
// environment limited to Config.Env (the gateway's secrets are not
// inherited), Pdeathsig on Linux so plugins die with the gateway, a short
// socket directory, and plugin stderr logs bridged into the gateway's slog
// logger under the plugin's name. After the handshake the host calls
// Describe, then configures every channel instance Config.Instances returns.
//
// # Supervision
//
// The host polls each process (go-plugin has no exit callback, #92), pings
// it and calls CheckHealth for every instance periodically. A process that
// exits or stops answering pings is restarted with capped exponential
// backoff and jitter; the backoff resets after a run of Config.StableAfter.
// Config.CrashLimit crashes within Config.CrashWindow open a circuit
// breaker: the plugin stays failed until Reset or a gateway restart.
// While a plugin is not running, its channel's calls fail fast with an
// *UnavailableError (errors.Is(err, ErrPluginDown)).
package pluginhost
