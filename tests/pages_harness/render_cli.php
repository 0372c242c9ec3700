<?php
/* pages harness: render one page (or the tabbed parent) to stdout under php-cli.
 * Usage: php -d short_open_tag=On render_cli.php PAGE_NAME [theme]; exit 1 on any PHP warning. */
require_once __DIR__.'/layout.php';
set_error_handler(function ($no, $str, $file, $line) { fwrite(STDERR, "PHP error: $str in $file:$line\n"); exit(1); });
$name = $argv[1] ?? 'PlexCacheR';
if ($name === 'PlexCacheR') { echo harness_layout($name, $argv[2] ?? 'white'); exit(0); }
$site = harness_build_pages("$docroot/plugins/plexcache-r");
if (!isset($site[$name])) { fwrite(STDERR, "no page $name\n"); exit(2); }
echo harness_render_body($site[$name]);
