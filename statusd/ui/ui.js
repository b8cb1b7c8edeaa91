"use strict";
/*
 * The status page: reads the API with the token that came in the URL
 * fragment (#t=TOKEN, never sent to a server), then takes the fragment out
 * of the address bar and history.  The token stays in this tab only.
 * Everything shown is text set through textContent: nothing from the API
 * is ever parsed as HTML.
 */
(function () {
	var m = /(?:^#|&)t=([0-9a-f]{16,128})/.exec(location.hash);
	if (m) {
		sessionStorage.setItem("vaultsync-token", m[1]);
		history.replaceState(null, "", location.pathname);
	}
	var token = sessionStorage.getItem("vaultsync-token") || "";

	function el(tag, text, cls) {
		var e = document.createElement(tag);
		if (text !== undefined && text !== null) e.textContent = String(text);
		if (cls) e.className = cls;
		return e;
	}
	function get(path) {
		return fetch(path, { headers: { "Authorization": "Bearer " + token },
			cache: "no-store", credentials: "omit" }).then(function (r) {
			if (r.status === 401) throw new Error("the token is missing or wrong: open the URL that vaultsyncctl status --ui prints");
			return r.json().then(function (j) {
				if (!r.ok && r.status !== 503) throw new Error(j.error || ("HTTP " + r.status));
				return j;
			});
		});
	}
	function mib(n) { return (n / 1048576).toFixed(1) + " MiB"; }
	function when(t) { return t ? t.replace("T", " ").replace("Z", " UTC") : "never"; }
	function tone(state) {
		return state === "unlocked" || state === "locked" ? "good" :
		    state === "conflict" || state === "error" ? "bad" : "warn";
	}
	function problem(msg) {
		var p = document.getElementById("problem");
		p.hidden = !msg;
		p.textContent = msg || "";
	}

	var ticks = {};
	function chart(name) {
		var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
		svg.setAttribute("class", "ticks");
		svg.setAttribute("viewBox", "0 0 500 60");
		svg.setAttribute("preserveAspectRatio", "none");
		var list = ticks[name] || [], max = 1;
		list.forEach(function (t) { max = Math.max(max, t.duration_ms); });
		list.forEach(function (t, i) {
			var h = Math.max(2, 56 * t.duration_ms / max);
			var r = document.createElementNS(svg.namespaceURI, "rect");
			r.setAttribute("x", i * 10);
			r.setAttribute("y", 60 - h);
			r.setAttribute("width", 8);
			r.setAttribute("height", h);
			r.setAttribute("class", t.outcome);
			var tip = document.createElementNS(svg.namespaceURI, "title");
			tip.textContent = "tick " + t.tick_index + " (" + t.trigger + ") " + t.outcome +
			    " in " + t.duration_ms + " ms" + (t.error ? ": " + t.error : "");
			r.appendChild(tip);
			svg.appendChild(r);
		});
		return svg;
	}

	function render(s) {
		var d = s.daemon;
		document.getElementById("daemon").textContent = "vaultsyncd " + d.version + ", pid " +
		    d.pid + ", " + d.mode + " mode, up " + d.uptime_s + " s \u2014 " +
		    (s.healthy ? "healthy" : "UNHEALTHY");
		document.getElementById("daemon").className = s.healthy ? "good" : "bad";
		var box = document.getElementById("vaults");
		box.replaceChildren();
		s.vaults.forEach(function (v) {
			var card = el("article", null, "vault"), h = el("h2", v.name);
			h.appendChild(el("span", v.state, "state " + tone(v.state)));
			card.appendChild(h);
			var dl = el("dl");
			[["path", v.path], ["remote", v.remote || "(local only)"],
			 ["last save", when(v.last_save_at)], ["last good push", when(v.last_ok_push_at)],
			 ["history", v.history_count === null || v.history_count === undefined ? null :
			     v.history_count + (v.history_count === 1 ? " copy" : " copies") + " on the remote"],
			 ["next attempt", v.next_push_at ? when(v.next_push_at) : null],
			 ["uploading", v.push_progress ? mib(v.push_progress.sent) + " of " +
			     mib(v.push_progress.total) + " (" + Math.floor(100 * v.push_progress.sent /
			     v.push_progress.total) + "%)" : null],
			 ["watcher", v.watcher.mode + (v.watcher.reason ? " \u2014 " + v.watcher.reason : "")],
			 ["archive", v.archive_bytes + " bytes"],
			 ["error", v.last_error],
			 ["verify", v.verify ? v.verify.outcome + " at " + when(v.verify.at) + ": " + v.verify.message : null]
			].forEach(function (row) {
				if (row[1] === null || row[1] === undefined || row[1] === "") return;
				dl.appendChild(el("dt", row[0]));
				dl.appendChild(el("dd", row[1], row[0] === "error" ? "bad" : ""));
			});
			card.appendChild(dl);
			card.appendChild(chart(v.name));
			box.appendChild(card);
		});
		var tb = document.querySelector("#children tbody");
		tb.replaceChildren();
		s.children.forEach(function (c) {
			var tr = el("tr");
			[c.name, c.pid || "\u2014", c.state, c.restarts, c.last_reason].forEach(function (x, i) {
				tr.appendChild(el("td", x, i === 2 ? (c.state === "running" ? "good" : "bad") : ""));
			});
			tb.appendChild(tr);
		});
		var cb = document.querySelector("#creds tbody");
		cb.replaceChildren();
		if (!s.credentials.length) {
			var none = el("td", "none in use: no vault pushes to S3");
			none.colSpan = 4;
			cb.appendChild(el("tr")).appendChild(none);
		}
		s.credentials.forEach(function (c) {
			var tr = el("tr");
			[c.path, c.source, c.state + (c.error ? ": " + c.error : ""), when(c.expiry)].forEach(function (x, i) {
				tr.appendChild(el("td", x, i === 2 ? (c.state === "ok" ? "good" : "bad") : ""));
			});
			cb.appendChild(tr);
		});
	}

	var last = null;
	function refresh() {
		get("/v1/status").then(function (s) {
			if (!s.daemon) throw new Error("the daemon has not sent its status yet");
			last = s;
			problem("");
			render(s);
			/* An upload moves between events: follow it every second while it runs. */
			if (s.vaults.some(function (v) { return v.push_progress; }))
				setTimeout(refresh, 1000);
		}).catch(function (e) { problem(e.message); });
	}
	/* The charts are drawn again once every vault's ticks have come. */
	function refreshTicks() {
		if (!last) return;
		Promise.all(last.vaults.map(function (v) {
			return get("/v1/vaults/" + encodeURIComponent(v.name) + "/ticks?limit=50").then(function (t) {
				ticks[v.name] = t.ticks || [];
			}).catch(function () {});
		})).then(function () { if (last) render(last); });
	}
	/*
	 * Live: wait on /v1/events (up to 30 s a request) and refresh when
	 * something happened; a tick also refreshes the charts.  After an
	 * error, or a statusd that restarted (another instance), start over.
	 */
	var since = null, instance = null;
	function listen() {
		var q = since === null ? "" : "?since=" + since + "&timeout=30";
		get("/v1/events" + q).then(function (ev) {
			if (instance !== null && ev.instance !== instance) since = null;
			instance = ev.instance;
			var first = since === null;
			since = ev.next - 1;
			if (!first && ev.events.length) {
				refresh();
				if (ev.events.some(function (x) { return x.type === "tick"; }))
					refreshTicks();
			}
			setTimeout(listen, 0);
		}).catch(function () { since = null; setTimeout(listen, 5000); });
	}
	/* Without a token every request would be refused: say so, ask nothing. */
	if (!token) {
		document.getElementById("daemon").textContent = "token needed";
		document.getElementById("daemon").className = "bad";
		problem("token needed: this page reads the daemon's status with the token that " +
		    "vaultsyncctl status --ui prints in its URL (after #t=). Open that URL.");
		return;
	}
	refresh();
	setTimeout(refreshTicks, 500);
	listen();
	setInterval(refresh, 15000);	/* uptime and times between events */
	setInterval(refreshTicks, 60000);
})();
