// Functions the recorder evaluates in the page after the visit (see recorder.py).
// Each starts with a '// ==== name' line; the recorder splits the file on those.

// ==== find_fields
(limit) => {
  const out = [];
  const CARD = /card.?num|cc.?num|cc-?number|cardnumber|credit.?card|card_?no|\bpan\b/i;
  const CVV = /cvv|cvc|csc|cc-?csc|security.?code|card.?code|card.?verif/i;
  const EXP = /exp(iry|iration)?|cc-?exp|valid.?thru/i;
  const NAME = /card.?holder|cc-?name|name.?on.?card/i;
  let i = 0;
  for (const el of document.querySelectorAll('input, select')) {
    if (out.length >= limit) break;
    const type = (el.type || '').toLowerCase();
    if (['hidden', 'submit', 'button', 'checkbox', 'radio', 'image', 'file'].includes(type)) continue;
    const hay = [el.name, el.id, el.autocomplete, el.placeholder,
                 el.getAttribute('aria-label') || '', el.className || ''].join(' ');
    let kind = null;
    if (type === 'password') kind = 'password';
    else if (CARD.test(hay)) kind = 'card';
    else if (CVV.test(hay)) kind = 'cvv';
    else if (EXP.test(hay)) kind = 'exp';
    else if (NAME.test(hay)) kind = 'name';
    else if (type === 'email' || /e-?mail|login|user/i.test(hay)) kind = 'user';
    if (!kind) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    el.setAttribute('data-tocsin-field', String(i));
    out.push({index: i, kind, tag: el.tagName.toLowerCase(), name: el.name || el.id || '',
              form: el.form ? Array.prototype.indexOf.call(document.forms, el.form) : -1});
    i += 1;
  }
  let b = 0;
  const BUTTON = /place.?order|pay|checkout|complete|submit|buy|confirm|purchase|bestellen|kaufen|comprar|注文|購入/i;
  for (const el of document.querySelectorAll('button, input[type=submit], input[type=button], a.button, a.btn')) {
    if (b >= 3) break;
    const text = (el.innerText || el.value || el.id || el.className || '').slice(0, 80);
    if (!BUTTON.test(text + ' ' + (el.id || '') + ' ' + (el.name || ''))) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    el.setAttribute('data-tocsin-button', String(b));
    out.push({index: b, kind: 'button', tag: el.tagName.toLowerCase(), name: text});
    b += 1;
  }
  return out;
}

// ==== no_navigate
() => {
  window.addEventListener('submit', (e) => e.preventDefault(), true);
  document.addEventListener('click', (e) => {
    const a = e.target && e.target.closest && e.target.closest('a[href]');
    if (a && a.hasAttribute('data-tocsin-button')) e.preventDefault();
  }, true);
}

// ==== frames
(limit) => {
  const out = [];
  for (const f of Array.from(document.querySelectorAll('iframe, frame')).slice(0, limit)) {
    const r = f.getBoundingClientRect();
    const cs = getComputedStyle(f);
    let hidden = null;
    for (let p = f.parentElement; p && !hidden; p = p.parentElement) {
      const s = getComputedStyle(p);
      if (s.display === 'none') hidden = 'inside a display:none <' + p.tagName.toLowerCase() + '>';
      else if (s.visibility === 'hidden') hidden = 'inside a visibility:hidden <' + p.tagName.toLowerCase() + '>';
      else if (parseFloat(s.opacity) < 0.05) hidden = 'inside a transparent <' + p.tagName.toLowerCase() + '>';
    }
    if (!hidden) {
      if (cs.display === 'none') hidden = 'display:none';
      else if (cs.visibility === 'hidden') hidden = 'visibility:hidden';
      else if (parseFloat(cs.opacity) < 0.05) hidden = 'opacity ' + cs.opacity;
      else if (r.width <= 2 || r.height <= 2) hidden = 'size ' + Math.round(r.width) + 'x' + Math.round(r.height);
      else if (r.right <= 0 || r.bottom <= 0 || r.left >= 5000 || r.top >= 20000) hidden = 'positioned off-screen';
    }
    out.push({src: f.src || '', width: f.getAttribute('width'), height: f.getAttribute('height'),
              rect: [Math.round(r.width), Math.round(r.height)], hidden,
              in_noscript: !!f.closest('noscript')});
  }
  return out;
}

// ==== page
(limits) => {
  const vw = window.innerWidth || 1, vh = window.innerHeight || 1;
  const overlays = [];
  let seen = 0;
  for (const el of document.querySelectorAll('body *')) {
    if (++seen > limits.elements || overlays.length >= 5) break;
    const cs = getComputedStyle(el);
    if (cs.position !== 'fixed' && cs.position !== 'absolute') continue;
    if (cs.display === 'none' || cs.visibility === 'hidden' || parseFloat(cs.opacity) < 0.1) continue;
    const r = el.getBoundingClientRect();
    const w = Math.max(0, Math.min(r.right, vw) - Math.max(r.left, 0));
    const h = Math.max(0, Math.min(r.bottom, vh) - Math.max(r.top, 0));
    const coverage = (w * h) / (vw * vh);
    if (coverage < 0.5) continue;
    if (overlays.some((o) => o.node.contains(el))) continue;
    overlays.push({node: el, tag: el.tagName.toLowerCase(), z: parseInt(cs.zIndex) || 0,
      coverage: Math.round(coverage * 100) / 100,
      text: (el.innerText || '').slice(0, 1500),
      src: el.tagName === 'IFRAME' ? el.src : null,
      links: Array.from(el.querySelectorAll('a, button')).slice(0, 10).map((a) => ({
        href: a.href || '', text: (a.innerText || a.value || '').slice(0, 80),
        download: a.getAttribute && a.getAttribute('download')}))});
  }
  const fieldsOf = (root) => Array.from(root.querySelectorAll('input, select, textarea')).slice(0, 60).map((e) => ({
    tag: e.tagName.toLowerCase(), type: (e.type || '').toLowerCase(), name: (e.name || e.id || '').slice(0, 60),
    autocomplete: (e.autocomplete || '').slice(0, 40), placeholder: (e.placeholder || '').slice(0, 60)}));
  const forms = Array.from(document.forms).slice(0, 20).map((f) => ({
    action: f.action || '', method: (f.getAttribute('method') || 'get').toLowerCase(),
    fields: fieldsOf(f)}));
  const loose = Array.from(document.querySelectorAll('input[type=password]')).filter((e) => !e.form).length;
  return {
    title: (document.title || '').slice(0, 300),
    text: document.body ? (document.body.innerText || '').slice(0, limits.text) : '',
    overlays: overlays.map(({node, ...rest}) => rest),
    forms, loose_passwords: loose,
    images: Array.from(document.images).slice(0, 40).map((i) => ((i.currentSrc || i.src || '').slice(0, 300) + ' ' + (i.alt || '').slice(0, 100))),
    links: Array.from(document.links).slice(0, 300).map((a) => a.href.slice(0, 300)),
    scripts: Array.from(document.scripts).slice(0, 200).map((s) => s.src ? s.src.slice(0, 500) : null).filter(Boolean),
    inline_scripts: Array.from(document.scripts).filter((s) => !s.src).slice(0, 50).map((s) => s.text.slice(0, 20000)),
    listeners: (window.__tocsin && window.__tocsin.listeners) || [],
  };
}
