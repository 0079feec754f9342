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
    getter(window, "outerWidth", () => window.innerWidth);
    getter(window, "outerHeight", () => window.innerHeight + 85);
  }
  if (touch && !window.outerWidth) {
    getter(window, "outerWidth", () => screen.width);
    getter(window, "outerHeight", () => screen.height);
  }
  // A desktop screen has a task bar.
  if (!touch && screen.availHeight === screen.height) {
    getter(Screen.prototype, "availHeight", () => screen.height - 40);
  }

  // Headless Chromium denies notifications outright; a person's Chrome asks ("default").
  try {
    if (window.Notification && Notification.permission === "denied") {
      getter(Notification, "permission", () => "default");
    }
  } catch (e) {}
})();
