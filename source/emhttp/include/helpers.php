<?php
/* plexcache-r: helpers shared by the pages and the endpoint.
 *
 * Everything the web UI knows about the backend goes through pcr_cli(): the `plexcache-r` command with
 * `--json`, every argument passed through escapeshellarg. Nothing here writes a file of the backend.
 */

/** The backend command. PLEXCACHE_CLI overrides (tests, development); the plugin installs it in sbin. */
function pcr_cli_path(): string {
  $env = getenv('PLEXCACHE_CLI');
  if ($env) return $env;
  foreach (['/usr/local/sbin/plexcache-r', '/usr/local/emhttp/plugins/plexcache-r/scripts/plexcache-r'] as $p) {
    if (is_executable($p)) return $p;
  }
  return 'plexcache-r';
}

/** The settings file; the CLI's own default applies when PLEXCACHE_CONFIG is unset. */
function pcr_config_path(): string {
  return getenv('PLEXCACHE_CONFIG') ?: (string)pcr_schema()['vocabulary']['config_file'];
}

/** `plexcache-r config schema --json`, shipped beside this file (a test keeps the two equal): every
 * setting's type, default, bounds, options, label and help, and the words for the backend's own terms.
 * Read from the file so that no page view or poll starts the CLI for it. */
function pcr_schema(): array {
  static $schema = null;
  if ($schema === null) $schema = json_decode((string)file_get_contents(__DIR__.'/schema.json'), true);
  return $schema;
}

/** Where Unraid keeps var.ini (csrf_token). */
function pcr_emhttp_state(): string {
  return getenv('PCR_EMHTTP_STATE') ?: (string)pcr_schema()['keys']['paths.emhttp_state_dir']['default'];
}

/** The command line prefix: CLI, --config, --json. */
function pcr_base_cmd(?string $config = null): string {
  return escapeshellarg(pcr_cli_path()).' --config '.escapeshellarg($config ?? pcr_config_path()).' --json';
}

/**
 * Run the CLI and decode its one JSON document.
 * Returns ['code'=>int, 'doc'=>array, 'stderr'=>string]. A command that printed no JSON (crash, missing
 * binary) gets a document {ok:false, error:...} so callers have one shape to handle.
 */
function pcr_cli(array $args, ?string $stdin = null, ?string $config = null, int $timeout = 60): array {
  $cmd = pcr_base_cmd($config);
  foreach ($args as $a) $cmd .= ' '.escapeshellarg((string)$a);
  if ($timeout > 0 && is_executable('/usr/bin/timeout')) $cmd = '/usr/bin/timeout '.(int)$timeout.' '.$cmd;
  $spec = [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']];
  $proc = @proc_open($cmd, $spec, $pipes);
  if (!is_resource($proc)) {
    return ['code' => 127, 'doc' => ['ok' => false, 'error' => 'cannot start plexcache-r'], 'stderr' => ''];
  }
  if ($stdin !== null && !pcr_write_all($pipes[0], $stdin)) {
    // The CLI must never see the end of a partial list: stop it before closing its stdin.
    proc_terminate($proc, 9);
    foreach ($pipes as $pipe) fclose($pipe);
    proc_close($proc);
    return ['code' => 1, 'doc' => ['ok' => false, 'error' => 'could not hand the whole request to plexcache-r'], 'stderr' => ''];
  }
  fclose($pipes[0]);
  $out = stream_get_contents($pipes[1]);
  $err = stream_get_contents($pipes[2]);
  fclose($pipes[1]); fclose($pipes[2]);
  $code = proc_close($proc);
  $doc = json_decode((string)$out, true);
  if (!is_array($doc)) {
    $line = trim(strtok(trim((string)$err) ?: '', "\n") ?: '');
    $msg = $code == 124 ? 'plexcache-r did not answer in time' : ($line ?: 'plexcache-r gave no answer (exit '.$code.')');
    $doc = ['ok' => false, 'error' => preg_replace('/^plexcache-r: /', '', $msg), 'exit_code' => $code];
  }
  return ['code' => $code, 'doc' => $doc, 'stderr' => (string)$err];
}

/** Write all of $data to a pipe (fwrite may take only part of it); false when the reader went away. */
function pcr_write_all($pipe, string $data): bool {
  for ($done = 0, $total = strlen($data); $done < $total; $done += $n) {
    $n = @fwrite($pipe, substr($data, $done, 65536));
    if (!$n) return false;
  }
  return true;
}

/** The settings with secrets masked (cached for the request). */
function pcr_settings(): array {
  static $settings = null;
  if ($settings === null) {
    $res = pcr_cli(['config', 'show']);
    $settings = ($res['doc']['ok'] ?? false) ? ($res['doc']['settings'] ?? []) : [];
  }
  return $settings;
}

/** A path setting, with the product default when the settings cannot be read. Read from the file the
 * CLI writes, not by starting it: the pages ask for a path on every poll of a job, the log or a run. */
function pcr_path_setting(string $key): string {
  $paths = pcr_file_paths();
  if ($paths === null) $paths = pcr_settings()['paths'] ?? [];   // a file written by hand: ask the CLI
  return (string)($paths[$key] ?? pcr_schema()['keys']['paths.'.$key]['default']);
}

/**
 * The `paths:` section of settings.yaml as `config set` writes it (yaml.safe_dump, block style: one
 * "  key: value" line each, a value plain or in single quotes). Null when the file is shaped otherwise,
 * so the caller asks the CLI, which reads any YAML.
 */
function pcr_file_paths(): ?array {
  static $paths = false;
  if ($paths !== false) return $paths;
  $text = @file_get_contents(pcr_config_path());
  if ($text === false) return $paths = [];   // no file yet: every path has its default
  if (!preg_match('/^paths:\n((?:  [a-z_]+: .*\n?)*)/m', $text, $m)) return $paths = (strpos($text, 'paths') === false ? [] : null);
  $paths = [];
  foreach (explode("\n", rtrim($m[1], "\n")) as $line) {
    if (!preg_match('/^  ([a-z_]+): (.*)$/', $line, $v)) return $paths = null;
    $value = $v[2];
    if (preg_match("/^'((?:[^']|'')*)'$/", $value, $q)) $value = str_replace("''", "'", $q[1]);
    elseif ($value === '' || strpbrk($value[0], "'\"{[&*!|>%@`#") !== false || strpos($value, ' #') !== false) return $paths = null;
    $paths[$v[1]] = $value;
  }
  return $paths;
}

function pcr_log_file(): string {
  return rtrim(pcr_path_setting('log_dir'), '/').'/plexcache-r.log';
}

/** The CSRF token emhttp wrote to var.ini (pages may also get it from $var). */
function pcr_csrf_token(): string {
  $ini = @parse_ini_file(pcr_emhttp_state().'/var.ini');
  return (string)($ini['csrf_token'] ?? '');
}
