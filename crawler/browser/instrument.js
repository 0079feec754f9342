// tocsin's page instrumentation, run before any script of the page (add_init_script).
// It records which scripts listen to what on form fields (a skimmer hooks the card
// fields), and offers the helpers the recorder evaluates after the visit. It changes
// nothing the page can rely on, except that listeners are counted on the way in.
(() => {
  if (window.__tocsin) return;
  const T = (window.__tocsin = { listeners: [], n: 0 });
  const EVENTS = /^(input|change|keyup|keydown|keypress|blur|focusout|submit|click|paste|mousedown)$/;
  const FIELD = /^(input|select|textarea|form|button)$/i;

  function describe(target) {
    if (target === window) return { tag: "window" };
    if (target === document) return { tag: "#document" };
    if (!(target instanceof Element)) return null;
    const tag = target.tagName.toLowerCase();
    if (!FIELD.test(tag) && tag !== "body") return null;
    return {
      tag,
      id: (target.id || "").slice(0, 60),
      name: (target.getAttribute("name") || "").slice(0, 60),
      type: (target.getAttribute("type") || "").slice(0, 20),
      autocomplete: (target.getAttribute("autocomplete") || "").slice(0, 40),
      placeholder: (target.getAttribute("placeholder") || "").slice(0, 60),
    };
  }

  function scriptOf() {
    const lines = (new Error().stack || "").split("\n").slice(2);
    for (const line of lines) {
      const m = line.match(/((?:https?|file):\/\/[^\s()]+?):(\d+):(\d+)/);
      if (m) return { url: m[1].slice(0, 500), line: +m[2] };
    }
    return null;
  }

  const add = EventTarget.prototype.addEventListener;
  const hooked = function addEventListener(type, listener, options) {
    try {
      if (T.listeners.length < 400 && EVENTS.test(String(type))) {
        const target = describe(this);
        if (target) T.listeners.push({ type: String(type), target, script: scriptOf() });
      }
    } catch (e) {
      /* never break the page */
    }
    return add.call(this, type, listener, options);
  };
  try {
    Object.defineProperty(hooked, "toString", {
      value: () => "function addEventListener() { [native code] }",
    });
  } catch (e) {}
  EventTarget.prototype.addEventListener = hooked;

  // Property handlers (el.onchange = ...) are listeners too.
  for (const [proto, props] of [
    [HTMLInputElement.prototype, ["onchange", "onkeyup", "onkeydown", "oninput", "onblur", "onpaste"]],
    [HTMLFormElement.prototype, ["onsubmit"]],
  ]) {
    for (const prop of props) {
      const desc = Object.getOwnPropertyDescriptor(HTMLElement.prototype, prop);
      if (!desc || !desc.set) continue;
      try {
        Object.defineProperty(proto, prop, {
          configurable: true,
          enumerable: true,
          get() {
            return desc.get.call(this);
          },
          set(v) {
            try {
              if (T.listeners.length < 400 && v) {
                const target = describe(this);
                if (target) T.listeners.push({ type: prop.slice(2), target, script: scriptOf() });
              }
            } catch (e) {}
            return desc.set.call(this, v);
          },
        });
      } catch (e) {}
    }
  }
  // Outbound channels the network log cannot see: what a page hands to a WebRTC data
  // channel (peer-to-peer, around any proxy) is noted with the peer's ICE servers, even
  // when the connection never opens (the guard's browser sends no non-proxied UDP).
  const X = (T.exfil = []);
  function sample(data) {
    if (typeof data === "string") return data.slice(0, 2000);
    if (data instanceof ArrayBuffer) return new TextDecoder().decode(data.slice(0, 2000));
    if (ArrayBuffer.isView(data)) return new TextDecoder().decode(data).slice(0, 2000);
    if (typeof Blob !== "undefined" && data instanceof Blob) return `[blob of ${data.size} bytes]`;
    return String(data).slice(0, 2000);
  }
  if (window.RTCPeerConnection && window.RTCDataChannel) {
    const owners = new WeakMap();
    const create = RTCPeerConnection.prototype.createDataChannel;
    RTCPeerConnection.prototype.createDataChannel = function createDataChannel(...args) {
      const channel = create.apply(this, args);
      try {
        owners.set(channel, this);
      } catch (e) {}
      return channel;
    };
    const send = RTCDataChannel.prototype.send;
    RTCDataChannel.prototype.send = function send_(data) {
      try {
        if (X.length < 100) {
          const pc = owners.get(this);
          const servers = [];
          if (pc) {
            for (const s of (pc.getConfiguration().iceServers || []).slice(0, 5)) {
              servers.push(...[].concat(s.urls || []).map((u) => String(u).slice(0, 300)));
            }
            const sdp = (pc.remoteDescription && pc.remoteDescription.sdp) || "";
            for (const m of sdp.matchAll(/a=candidate:\S+ \d+ \S+ \d+ (\S+) (\d+)/g)) {
              if (servers.length < 10) servers.push(`peer:${m[1]}:${m[2]}`);
            }
          }
          X.push({ channel: "webrtc", label: String(this.label).slice(0, 100), servers,
                   state: this.readyState, data: sample(data), script: scriptOf() });
        }
      } catch (e) {}
      return send.call(this, data);
    };
    for (const [fn, name] of [
      [RTCPeerConnection.prototype.createDataChannel, "createDataChannel"],
      [RTCDataChannel.prototype.send, "send"],
    ]) {
      try {
        Object.defineProperty(fn, "toString", {
          value: () => `function ${name}() { [native code] }`,
        });
        Object.defineProperty(fn, "name", { value: name });
      } catch (e) {}
    }
  }
})();
