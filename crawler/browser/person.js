// A person's browser, as far as a page's script can tell (add_init_script, before any
// script of the page). Loaders stay quiet when they see automation: these are the tells
// Chromium under Playwright still shows once the launch flags and the DevTools user-agent
// override (crawler/browser/profiles.py) have done their part. Each fix applies only
// when the tell is there, and the replaced getters print as native code.
(() => {
  const native = (fn, name) => {
    try {
      Object.defineProperty(fn, "toString", {
        value: () => `function ${name}() { [native code] }`,
      });
    } catch (e) {}
    return fn;
  };
  let quietDepth = 0;
  // Reads made by the disguise itself are not the page's (see the probes below).
  const quiet = (fn) => {
    quietDepth++;
    try {
      return fn();
    } finally {
      quietDepth--;
    }
  };
  const getter = (target, prop, get) => {
    try {
      Object.defineProperty(target, prop, {
        configurable: true,
        enumerable: true,
        get: native(get, `get ${prop}`),
      });
    } catch (e) {}
  };

  // navigator.webdriver: false in a person's Chrome (--disable-blink-features=
  // AutomationControlled does this natively; this covers a Chromium without it).
  if (navigator.webdriver) getter(Navigator.prototype, "webdriver", () => false);

  // A headless window has no frame: outer size equal to (old headless: 0, not even) the
  // inner size. A desktop Chrome window has ~85 px of tabs and toolbar above the page.
  const touch = navigator.maxTouchPoints > 0;
  if (!touch && window.outerHeight <= window.innerHeight) {
    getter(window, "outerWidth", () => quiet(() => window.innerWidth));
    getter(window, "outerHeight", () => quiet(() => window.innerHeight + 85));
  }
  if (touch && !window.outerWidth) {
    getter(window, "outerWidth", () => quiet(() => screen.width));
    getter(window, "outerHeight", () => quiet(() => screen.height));
  }
  // A desktop screen has a task bar.
  if (!touch && screen.availHeight === screen.height) {
    getter(Screen.prototype, "availHeight", () => quiet(() => screen.height - 40));
  }

  // What the page reads that a condition changes.
  const seen = {};
  try {
    Object.defineProperty(window, "__TOCSIN_PROBE__", { value: seen, enumerable: false });
  } catch (e) {}
  const probe = (target, prop, name) => {
    const desc = Object.getOwnPropertyDescriptor(target, prop);
    if (!desc) return;
    if (desc.get) {
      const get = desc.get;
      getter(target, prop, function () {
        if (!quietDepth) seen[name] = (seen[name] || 0) + 1;
        return get.call(this);
      });
    } else if (typeof desc.value === "function") {
      const fn = desc.value;
      const wrapped = native(function () {
        if (!quietDepth) seen[name] = (seen[name] || 0) + 1;
        return fn.apply(this, arguments);
      }, prop);
      try {
        Object.defineProperty(target, prop, { ...desc, value: wrapped });
      } catch (e) {}
    }
  };
  for (const prop of ["userAgent", "userAgentData", "maxTouchPoints", "platform"]) {
    probe(Navigator.prototype, prop, prop);
  }
  probe(Document.prototype, "referrer", "referrer");
  for (const prop of ["width", "height", "orientation"]) probe(Screen.prototype, prop, "screen");
  for (const prop of ["innerWidth", "innerHeight", "outerWidth", "outerHeight"]) {
    probe(window, prop, "window size");
  }
  probe(window, "matchMedia", "matchMedia");

  // Headless Chromium denies notifications outright; a person's Chrome asks ("default").
  try {
    if (window.Notification && Notification.permission === "denied") {
      getter(Notification, "permission", () => "default");
    }
  } catch (e) {}
})();
