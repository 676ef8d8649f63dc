package clusterview

import (
	"html/template"
	"io"
	"net"
	"strings"
	"time"
)

// PageOptions are what the page needs beyond the status document.
type PageOptions struct {
	// Refresh is how often the browser reloads the page: 0 means every
	// 2 s, negative never.
	Refresh time.Duration
	// Port is the port this page is served on; the pointer to the
	// Active's page assumes the same port there.
	Port string
	// Generated is when the status was read.
	Generated time.Time
}

// ShortDigest is how digests are shown: "sha256:" and 12 hex digits, as
// mwgc plan prints them.
func ShortDigest(d string) string {
	const n = len("sha256:") + 12
	if len(d) > n {
		return d[:n]
	}
	return d
}

// ActivePage is the URL of the Active's cluster page when it is another
// node and its management address is known.
func (v *View) ActivePage(port string) string {
	if v.Active || v.ActiveManagement == "" || port == "" {
		return ""
	}
	return "http://" + net.JoinHostPort(v.ActiveManagement, port) + "/"
}

type pageData struct {
	*View
	Opt        PageOptions
	RefreshSec int
	Generated  string
	ActiveURL  string
}

// WriteHTML writes the cluster page: server-rendered, no script, no
// external asset (it works offline and under a strict Content-Security-
// Policy), reloading itself every Refresh.
func WriteHTML(w io.Writer, v *View, opt PageOptions) error {
	if opt.Refresh == 0 {
		opt.Refresh = 2 * time.Second
	}
	refresh := 0
	if opt.Refresh > 0 {
		refresh = max(1, int(opt.Refresh.Seconds()))
	}
	d := pageData{View: v, Opt: opt, RefreshSec: refresh,
		Generated: opt.Generated.UTC().Format("2006-01-02 15:04:05 UTC"), ActiveURL: v.ActivePage(opt.Port)}
	return page.Execute(w, d)
}

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"short": ShortDigest,
	"join":  func(s []string) string { return strings.Join(s, ", ") },
	"tri": func(t Tri) string {
		switch t {
		case Yes:
			return "yes"
		case No:
			return "no"
		}
		return "unknown"
	},
	"role": func(n Node) string {
		if n.Director {
			return "director"
		}
		return "scanning"
	},
}).Parse(pageHTML))

const pageHTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
{{- if .RefreshSec}}
<meta http-equiv="refresh" content="{{.RefreshSec}}">
{{- end}}
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mwgc {{.Cluster}} · {{.Node}} · {{.State}}</title>
<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#202124;background:#f8f9fa}
header{background:#202124;color:#fff;padding:12px 20px}
header h1{font-size:20px;margin:0}
header p{margin:4px 0 0;color:#bdc1c6}
main{padding:12px 20px}
section{background:#fff;border:1px solid #dadce0;border-radius:6px;padding:10px 14px;margin:0 0 12px}
h2{font-size:15px;margin:0 0 8px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eee;vertical-align:top}
th{font-weight:600;color:#5f6368}
code{font:12px ui-monospace,Menlo,Consolas,monospace}
.state{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600;background:#e8eaed;color:#202124}
.Active,.up,.yes{background:#ceead6;color:#0d652d}
.Backup{background:#e8eaed;color:#3c4043}
.Fault,.down,.no{background:#fad2cf;color:#a50e0e}
.unseen,.unknown,.Initialize{background:#fef7e0;color:#7a4f01}
.alarm{color:#a50e0e;font-weight:600}
.warning{color:#7a4f01}
.muted{color:#5f6368}
</style>
</head>
<body>
<header>
<h1>cluster {{.Cluster}}</h1>
<p>node <b>{{.Node}}</b> · <span class="state {{.State}}" id="state">{{.State}}</span> · plan <code>{{short .Digest}}</code> · {{.Generated}}{{if .RefreshSec}} · refreshes every {{.RefreshSec}} s{{end}}</p>
</header>
<main>
<section id="active">
{{- if .Active}}
<h2>This node is the Active director</h2>
<p>It holds the VIPs and discovers the nodes below.</p>
{{- else if .ActiveAddress}}
<h2>The Active director is <span id="active-node">{{if .ActiveNode}}{{.ActiveNode}}{{else}}{{.ActiveAddress}}{{end}}</span></h2>
<p>This node is {{.State}}; the Active advertises from {{.ActiveAddress}}.
{{- if .ActiveURL}} Its cluster page, with every node: <a href="{{.ActiveURL}}" id="active-link">{{.ActiveURL}}</a> (where its listener is exposed).{{end}}</p>
{{- else}}
<h2>No Active director heard</h2>
<p>This node is {{.State}}.</p>
{{- end}}
</section>
<section id="alarms">
<h2>Alarms</h2>
{{- if .Alarms}}
<ul>{{range .Alarms}}<li class="{{.Severity}}">{{.Text}}</li>{{end}}</ul>
{{- else}}
<p class="muted">None.</p>
{{- end}}
</section>
{{- if .Groups}}
<section id="groups">
<h2>VRRP groups</h2>
<table>
<tr><th>group</th><th>VRID</th><th>interface</th><th>state</th><th>VIPs</th><th>held by</th><th>adverts sent / received</th><th>transitions</th><th>drops</th><th>more</th></tr>
{{- range .Groups}}
<tr data-group="{{.Name}}"><td>{{.Name}}</td><td>{{.VRID}}</td><td>{{.Interface}} ({{.Family}})</td><td><span class="state {{.State}}">{{.State}}</span></td><td>{{join .Configured}}</td><td class="holder">{{.Holder}}</td><td>{{.AdvertsSent}} / {{.AdvertsRecv}}</td><td>{{.Transitions}}</td><td>{{range $k, $n := .Drops}}{{$k}}: {{$n}} {{end}}</td><td>{{range .Extra}}{{.Key}}: <code>{{.Value}}</code> {{end}}</td></tr>
{{- end}}
</table>
</section>
{{- end}}
<section id="nodes">
<h2>Nodes</h2>
{{- if .Nodes}}
<p id="rollout">Roll-out: {{.Rollout.Summary}}</p>
<table>
<tr><th>node</th><th>role</th><th>state</th><th>since</th><th>last answer</th><th>health</th><th>load</th><th>running plan</th><th>compiled plan</th><th>current</th><th>restarts</th><th>more</th></tr>
{{- range .Nodes}}
<tr data-node="{{.Name}}" data-status="{{.Status}}" data-rollout="{{tri .InSync}}"><td><b>{{.Name}}</b>{{if .Self}} (this node){{end}}<br><span class="muted">{{.Address}}</span></td><td>{{role .}}</td><td><span class="state {{.Status}}">{{.Status}}</span></td><td>{{.Since}}</td><td>{{.LastSeen}}</td><td>{{.Health}}</td><td>{{.Load}}</td><td><code>{{short .Digest}}</code></td><td><code>{{short .Expected}}</code></td><td><span class="state {{tri .InSync}}">{{tri .InSync}}</span></td><td>{{.Restarts}}</td><td>{{range .Extra}}{{.Key}}: <code>{{.Value}}</code> {{end}}</td></tr>
{{- end}}
</table>
{{- else if .Active}}
<p class="muted">No management protocol on this node: no table of nodes.</p>
{{- else}}
<p class="muted">Only the Active director knows every node{{if .ActiveURL}}: see <a href="{{.ActiveURL}}">its page</a>{{end}}.</p>
{{- end}}
</section>
<section id="reload">
<h2>Plan</h2>
<p>Running <code>{{.Digest}}</code>.
{{- with .Reload}} Last reload: <span class="{{if eq .Result "ok"}}muted{{else}}alarm{{end}}">{{.Result}}</span>, {{.At}}{{if .Error}}: {{.Error}}{{end}}.{{else}} Not reloaded since start.{{end}}</p>
{{- if .Management}}
<p>Management protocol: {{.Management}}</p>
{{- end}}
{{- if .Notify}}
<p id="notify">Notify commands: {{.Notify}}</p>
{{- end}}
</section>
{{- if .Extra}}
<section id="extra">
<h2>More status</h2>
<table>{{range .Extra}}<tr><th>{{.Key}}</th><td><code>{{.Value}}</code></td></tr>{{end}}</table>
</section>
{{- end}}
<p class="muted">Served by mwgc-agent from its /status (JSON) · <a href="status">status</a> · <a href="metrics">metrics</a></p>
</main>
</body>
</html>
`
