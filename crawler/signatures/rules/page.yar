// Page content: miners, skimmers, loaders and lures, over documents, scripts and the DOM.

rule coinhive_style_miner
{
    meta:
        family = "cryptominer"
        severity = "malicious"
        confidence = "0.9"
        scope = "page"
        description = "a browser cryptominer (CoinHive-style API)"
    strings:
        $a1 = "CoinHive.Anonymous" nocase
        $a2 = "CoinHive.User" nocase
        $a3 = "CoinHive.Token" nocase
        $a4 = "CRLT.Anonymous" nocase
        $a5 = "CoinImp.Anonymous" nocase
        $a6 = "Client.Anonymous(" nocase
        $a7 = "deepMiner.Anonymous" nocase
        $a8 = "WMP.Anonymous" nocase
        $b1 = "coinhive.min.js" nocase
        $b2 = "authedmine.min.js" nocase
        $b3 = "cryptonight" nocase
        $b4 = "cryptoloot" nocase
        $b5 = "webminepool" nocase
        $c1 = ".setThrottle(" nocase
        $c2 = "throttle:" nocase
        $c3 = ".getHashesPerSecond(" nocase
        $c4 = "\"type\":\"job\"" nocase
        $c5 = "\"site_key\"" nocase
    condition:
        any of ($a*) or (any of ($b*) and any of ($c*)) or (2 of ($c*) and any of ($b*))
}

rule card_skimmer_exfil_code
{
    meta:
        family = "card-skimmer"
        severity = "suspicious"
        confidence = "0.6"
        scope = "page"
        description = "script code that reads card fields and sends them encoded"
    strings:
        $f1 = /cc[_-]?num(ber)?/ nocase
        $f2 = "cardnumber" nocase
        $f3 = /cc[_-]?cvv|cvv2?|cvc/ nocase
        $f4 = /cc[_-]?exp/ nocase
        $e1 = "btoa(" nocase
        $e2 = "JSON.stringify" nocase
        $s1 = "sendBeacon" nocase
        $s2 = "new Image" nocase
        $s3 = /\.src\s*=\s*[^;]{0,80}\+/
    condition:
        filesize < 3MB and 2 of ($f*) and $e1 and $e2 and any of ($s*)
}

rule charcode_script_loader
{
    meta:
        family = "injected-script"
        severity = "suspicious"
        confidence = "0.6"
        scope = "page"
        description = "an obfuscated loader that builds a script URL from character codes"
    strings:
        $fcc = /String\.fromCharCode\(\s*(\d{2,3}\s*,\s*){20,}\d{2,3}\s*\)/
        $el = /createElement\(\s*['"]script['"]\s*\)/ nocase
        $el2 = /createElement\(\s*String\.fromCharCode\(/ nocase
    condition:
        $fcc and ($el or $el2)
}

rule fake_browser_update_lure
{
    meta:
        family = "fake-update"
        severity = "suspicious"
        confidence = "0.7"
        scope = "page"
        description = "fake browser-update lure text"
    strings:
        $t1 = "browser is out of date" nocase
        $t2 = "browser is outdated" nocase
        $t3 = "update chrome" nocase
        $t4 = "chrome update" nocase
        $t5 = "update your browser" nocase
        $t6 = "critical security update" nocase
        $t7 = "you are using an older version of" nocase
        $d1 = /[A-Za-z0-9_.\-]{2,60}\.(zip|exe|msi|msix|js|apk)["']/ nocase
        $d2 = "download" nocase
    condition:
        filesize < 5MB and 2 of ($t*) and any of ($d*)
}

rule clickfix_lure
{
    meta:
        family = "fake-update"
        severity = "malicious"
        confidence = "0.85"
        scope = "page"
        description = "a ClickFix lure (paste a command into the Run dialog)"
    strings:
        $k1 = "Windows + R" nocase
        $k2 = "Win + R" nocase
        $k3 = "Windows Key + R" nocase
        $k4 = "CTRL + V" nocase
        $c1 = "navigator.clipboard.writeText" nocase
        $c2 = "execCommand(\"copy\")" nocase
        $c3 = "execCommand('copy')" nocase
        $p1 = "powershell" nocase
        $p2 = "mshta" nocase
        $p3 = "cmd /c" nocase
    condition:
        filesize < 5MB and any of ($k*) and any of ($c*) and any of ($p*)
}
