// Draws the <pre class="mermaid"> blocks of a deliverable with the vendored Mermaid; strict:
// labels typed in the configuration are text, never HTML.
mermaid.initialize({ startOnLoad: true, securityLevel: "strict" });
