// Webshells: their rendered panels (scope page) and their PHP source (any scope).
// A named shell's panel pairs its name with the server details it always prints.

rule webshell_panel_named
{
    meta:
        family = "webshell"
        severity = "malicious"
        confidence = "0.9"
        scope = "page"
        description = "a known webshell's panel (WSO, b374k, Alfa and kin)"
    strings:
        $n1 = /WSO [0-9]\.[0-9]/
        $n2 = "b374k" nocase
        $n3 = /ALFA\s*TEaM/ nocase
        $n4 = "FilesMan"
        $n5 = "IndoXploit" nocase
        $n6 = /c99\s*shell/ nocase
        $i1 = /Uname\s*:/ nocase
        $i2 = /Safe\s*mode\s*:/ nocase
        $i3 = /Server\s*IP\s*:/ nocase
        $i4 = /disable_?\s*functions\s*:/ nocase
        $i5 = /PHP\s*Version\s*:/ nocase
        $i6 = /Php:\s*<br>/ nocase
    condition:
        filesize < 5MB and any of ($n*) and any of ($i*)
}

rule webshell_panel_generic
{
    meta:
        family = "webshell"
        severity = "suspicious"
        confidence = "0.7"
        scope = "page"
        description = "a page with a command form, server details and file permissions"
    strings:
        $c1 = /name=['"]?(cmd|command|p1|c)['"\s>]/ nocase
        $c2 = /(Execute|Console|Terminal|Back\s*Connect|Self\s*remove)/ nocase
        $i1 = /Uname\s*:/ nocase
        $i2 = /Safe\s*mode\s*:/ nocase
        $i3 = /disable_?\s*functions\s*:/ nocase
        $p1 = /[dl-][r-][w-][xsS-][r-][w-][xsS-][r-][w-][xtT-]/
    condition:
        filesize < 5MB and $c1 and $c2 and any of ($i*) and #p1 >= 3
}

rule webshell_php_source
{
    meta:
        family = "webshell"
        severity = "malicious"
        confidence = "0.9"
        scope = "any"
        description = "webshell PHP source (runs request input as code or commands)"
    strings:
        $php = "<?php" nocase
        $e1 = /eval\s*\(\s*(base64_decode|gzinflate|str_rot13|gzuncompress)\s*\(\s*\$_(POST|GET|REQUEST|COOKIE)/ nocase
        $e2 = /(system|shell_exec|passthru|exec|popen|proc_open)\s*\(\s*\$_(POST|GET|REQUEST|COOKIE)\s*\[/ nocase
        $e3 = /assert\s*\(\s*\$_(POST|GET|REQUEST)/ nocase
        $n1 = "FilesMan"
        $n2 = "b374k" nocase
        $n3 = "ALFA_DATA" nocase
    condition:
        filesize < 5MB and $php and (any of ($e*) or 2 of ($n*))
}
