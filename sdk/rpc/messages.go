package rpc

// Empty is a message with no fields.
type Empty struct{}

// InitRequest tells a plugin where the host's services are.
type InitRequest struct {
	// HostBroker is the go-plugin broker id serving the Host service.
	HostBroker uint32 `json:"host_broker"`
}

// OpenRequest is sdk.OpenRequest on the wire.
type OpenRequest struct {
	OpenID    uint64   `json:"open_id"`
	ParentID  uint64   `json:"parent_id"`
	Local     bool     `json:"local"`
	Name      string   `json:"name"`
	Hop       Hop      `json:"hop"`
	Argv      []string `json:"argv"`
	TimeoutMS int64    `json:"timeout_ms"`
}

// OpenEvent is one message of the Open stream: first the stream, then at
// most one setup error.
type OpenEvent struct {
	// ProcessID is set when the stream is a process the host spawned.
	ProcessID string `json:"process_id,omitempty"`
	// ConnToken and StderrToken name descriptors sent over the fd socket
	// when the stream is one the plugin owns.
	ConnToken   uint64 `json:"conn_token,omitempty"`
	StderrToken uint64 `json:"stderr_token,omitempty"`
	// Err ends the setup with an error.
	Err *WireError `json:"err,omitempty"`
}

// ClassifyRequest carries a boot failure to the plugin.
type ClassifyRequest struct {
	Failure BootFailure `json:"failure"`
	Hop     Hop         `json:"hop"`
}

// ClassifyResponse is the plugin's verdict (Err nil: not its own).
type ClassifyResponse struct {
	Err *WireError `json:"err,omitempty"`
}

// ReleaseRequest tells the plugin a hop is closed.
type ReleaseRequest struct {
	OpenID uint64 `json:"open_id"`
}

// SpawnRequest is Parent.Spawn on the wire.
type SpawnRequest struct {
	OpenID   uint64 `json:"open_id"`
	ParentID uint64 `json:"parent_id"`
	Req      Spawn  `json:"req"`
}

// SpawnResponse names the spawned process.
type SpawnResponse struct {
	ProcessID string `json:"process_id"`
	TTY       bool   `json:"tty"`
}

// TTYChunk is one message on the TTY stream. The plugin's first message
// names the process; after that, Data flows both ways.
type TTYChunk struct {
	ProcessID string `json:"process_id,omitempty"`
	Data      []byte `json:"data,omitempty"`
}

// DialRequest is Parent.Dial on the wire.
type DialRequest struct {
	OpenID   uint64 `json:"open_id"`
	ParentID uint64 `json:"parent_id"`
	Network  string `json:"network"`
	Address  string `json:"address"`
}

// DialResponse names the descriptor sent over the fd socket.
type DialResponse struct {
	Token uint64 `json:"token"`
}

// PromptRequest is Prompter.Prompt on the wire.
type PromptRequest struct {
	OpenID uint64 `json:"open_id"`
	Prompt Prompt `json:"prompt"`
}

// PromptResponse carries the answer.
type PromptResponse struct {
	Answer string `json:"answer"`
}

// PhaseRequest marks a setup phase.
type PhaseRequest struct {
	OpenID uint64 `json:"open_id"`
	Name   string `json:"name"`
}

// Hop mirrors sdk.Hop.
type Hop struct {
	Scheme  string            `json:"scheme"`
	User    string            `json:"user,omitempty"`
	Host    string            `json:"host,omitempty"`
	Port    int               `json:"port,omitempty"`
	Options map[string]string `json:"options,omitempty"`
}

// BootFailure mirrors sdk.BootFailure.
type BootFailure struct {
	Output     []byte `json:"output,omitempty"`
	Stderr     []byte `json:"stderr,omitempty"`
	TTY        []byte `json:"tty,omitempty"`
	Exited     bool   `json:"exited"`
	ExitStatus int    `json:"exit_status"`
	Python     string `json:"python"`
}

// Spawn mirrors sdk.SpawnRequest.
type Spawn struct {
	Argv []string `json:"argv"`
	Env  []string `json:"env,omitempty"`
	Dir  string   `json:"dir,omitempty"`
	TTY  bool     `json:"tty,omitempty"`
}

// Prompt mirrors sdk.Prompt.
type Prompt struct {
	Key     string `json:"key"`
	Message string `json:"message"`
	Secret  bool   `json:"secret,omitempty"`
	Retry   bool   `json:"retry,omitempty"`
}
