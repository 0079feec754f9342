// Payloads served directly or downloaded: droppers, macros, bot binaries.
// meta: family, severity (malicious | suspicious), confidence, scope (payload | page | any),
// description (a readable phrase; it becomes an evidence line).

rule wsh_dropper
{
    meta:
        family = "malware-download"
        severity = "malicious"
        confidence = "0.9"
        scope = "payload"
        description = "a Windows Script Host dropper (WScript/ActiveX objects that fetch and run a file)"
    strings:
        $shell = "WScript.Shell" nocase
        $shell2 = "Shell.Application" nocase
        $axo = "ActiveXObject" nocase
        $create = "CreateObject" nocase
        $http1 = "MSXML2.XMLHTTP" nocase
        $http2 = "WinHttp.WinHttpRequest" nocase
        $http3 = "MSXML2.ServerXMLHTTP" nocase
        $stream = "ADODB.Stream" nocase
        $run1 = ".Run(" nocase
        $run2 = ".ShellExecute" nocase
        $run3 = ".Exec(" nocase
        $run4 = "SaveToFile" nocase
    condition:
        filesize < 5MB and ($shell or $shell2) and ($axo or $create)
        and (any of ($http*) or $stream) and any of ($run*)
}

rule powershell_cradle
{
    meta:
        family = "malware-download"
        severity = "malicious"
        confidence = "0.85"
        scope = "payload"
        description = "a PowerShell download-and-run cradle"
    strings:
        $ps = "powershell" nocase
        $dl1 = "DownloadString" nocase
        $dl2 = "DownloadFile" nocase
        $dl3 = "Invoke-WebRequest" nocase
        $dl4 = "Net.WebClient" nocase
        $dl5 = "Start-BitsTransfer" nocase
        $run1 = "IEX" fullword
        $run2 = "Invoke-Expression" nocase
        $run3 = "Start-Process" nocase
        $run4 = "FromBase64String" nocase
    condition:
        filesize < 5MB and $ps and any of ($dl*) and any of ($run*)
}

rule office_auto_macro
{
    meta:
        family = "malware-download"
        severity = "malicious"
        confidence = "0.85"
        scope = "payload"
        description = "an Office macro that runs on opening and starts a program"
    strings:
        $auto1 = "AutoOpen" nocase
        $auto2 = "Auto_Open" nocase
        $auto3 = "Document_Open" nocase
        $auto4 = "Workbook_Open" nocase
        $auto5 = "AutoExec" nocase
        $exec1 = "Shell" fullword nocase
        $exec2 = "WScript" nocase
        $exec3 = "CreateObject" nocase
        $exec4 = "URLDownloadToFile" nocase
        $exec5 = "powershell" nocase
        $vba = "Attribute VB_" nocase
        $vba2 = "_VBA_PROJECT" nocase
        $vba3 = "vbaProject.bin" nocase
    condition:
        filesize < 20MB and any of ($auto*) and any of ($exec*) and (any of ($vba*) or uint32(0) == 0xE011CFD0)
}

rule iot_bot_binary
{
    meta:
        family = "malware-download"
        severity = "malicious"
        confidence = "0.9"
        scope = "payload"
        description = "an IoT bot binary (Mirai/Mozi/Gafgyt strings)"
    strings:
        $s1 = "/bin/busybox" nocase
        $s2 = "MIRAI" nocase
        $s3 = "mozi" fullword nocase
        $s4 = "/dev/watchdog"
        $s5 = "LCOGQGPTGP"
        $s6 = "npxXoudifFeEgGaACScs"
        $s7 = "[udp]" nocase
        $s8 = "GETLOCALIP" nocase
        $s9 = "dht.transmissionbt.com"
    condition:
        uint32(0) == 0x464C457F and 2 of them
}

rule shell_dropper
{
    meta:
        family = "malware-download"
        severity = "malicious"
        confidence = "0.85"
        scope = "payload"
        description = "a shell script that downloads, marks executable and runs binaries"
    strings:
        $dl1 = /(wget|curl|tftp|ftpget)\s[^\n]{0,200}https?:\/\// nocase
        $chmod = /chmod\s+(\+x|[0-7]{3})/
        $run = /\.\/[A-Za-z0-9_.\-]{2,40}/
        $tmp = /cd\s+\/(tmp|var\/run|mnt|root)/
    condition:
        filesize < 1MB and $dl1 and $chmod and ($run or $tmp)
}
