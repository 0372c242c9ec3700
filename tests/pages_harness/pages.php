<?php
/* pages harness: find the plugin's pages and render them the way PageBuilder and MainContentTabbed do.
 * A page file is an INI header, a line "---", and a body that is translated, then run as PHP. */
require_once __DIR__.'/unraid.php';

/** Every *.page of the plugin: name => header + root + text. Invalid headers are reported, as emhttp logs them. */
function harness_build_pages($dir) {
  $site = [];
  foreach (glob("$dir/*.page") as $file) {
    [$header, $text] = my_explode("\n---\n", file_get_contents($file));
    $page = @parse_ini_string($header);
    if (!$page) throw new RuntimeException("Invalid .page format: $file");
    $page += ['file' => $file, 'root' => dirname($file), 'name' => basename($file, '.page'), 'text' => $text];
    $site[$page['name']] = $page;
  }
  return $site;
}

/** Pages whose Menu names $parent, ordered by rank then name (find_pages). */
function harness_find_pages($site, $parent) {
  $found = [];
  foreach ($site as $page) {
    foreach (preg_split('/\s+/', trim($page['Menu'] ?? '')) as $entry) {
      [$menu, $rank] = my_explode(':', $entry);
      if ($menu === $parent) $found["$rank{$page['name']}"] = $page;
    }
  }
  ksort($found, SORT_NATURAL);
  return $found;
}

/** The body of one page as HTML: translated, (Markdown is off for all plexcache-r pages), evaluated. */
function harness_render_body($page) {
  global $docroot, $var, $display;
  if (strtolower($page['Markdown'] ?? 'true') !== 'false') {
    throw new RuntimeException("{$page['name']}: plexcache-r pages set Markdown=\"false\" (the harness has no Markdown)");
  }
  $code = '?>'.harness_parse_text($page['text']);
  ob_start();
  eval($code);
  return ob_get_clean();
}
