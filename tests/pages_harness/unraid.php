<?php
/* pages harness: the globals and helpers Unraid's webGui gives a .page, written for tests.
 * Behaviour follows the documented webGui conventions (PageBuilder.php, Helpers.php, Translations.php);
 * none of their code is used. Configured by environment:
 *   PCR_DOCROOT       docroot holding plugins/plexcache-r (a link to source/emhttp)
 *   PCR_EMHTTP_STATE  folder with var.ini (csrf_token), as /var/local/emhttp on Unraid
 */
$docroot = getenv('PCR_DOCROOT') ?: dirname(__DIR__, 2).'/source/emhttp-docroot';
$_SERVER['DOCUMENT_ROOT'] = $docroot;
$var = (array)@parse_ini_file((getenv('PCR_EMHTTP_STATE') ?: '/var/local/emhttp').'/var.ini');
$display = ['scale' => -1, 'number' => '.,', 'tabs' => 0, 'theme' => 'white'];
$language = [];

if (!function_exists('_')) {
  /** Translation: English is the identity, as with Unraid's default language. */
  function _($text) { return $text; }
}
function _var(&$name, $key = null, $default = '') {
  return is_null($key) ? ($name ?? $default) : ($name[$key] ?? $default);
}
function my_explode($split, $text, $count = 2) {
  return array_pad(explode($split, (string)$text, $count), $count, '');
}
function autov($file, $ret = false) {
  global $docroot;
  $path = $docroot.$file;
  $new = $file.'?v='.(file_exists($path) ? filemtime($path) : 'missing');
  if ($ret) return $new;
  echo $new;
}
function mk_option($select, $value, $text, $extra = '') {
  return "<option value='$value'".($value == $select ? ' selected' : '').(strlen($extra) ? " $extra" : '').">$text</option>";
}
function my_scale($value, &$unit, $decimals = null, $scale = null, $kilo = 1000) {
  $units = ['', 'K', 'M', 'G', 'T', 'P'];
  $base = $value ? (int)floor(log($value, $kilo)) : 0;
  $base = max(0, min($base, count($units) - 1));
  $unit = $units[$base].'B';
  return number_format($value / pow($kilo, $base), $decimals ?? ($base ? 1 : 0));
}
function parse_plugin_cfg($plugin, $sections = false) {
  global $docroot;
  $defaults = (array)@parse_ini_file("$docroot/plugins/$plugin/default.cfg", $sections);
  return $defaults;
}
/** `_(text)_` becomes the translation, like Translations.php parse_text (help markers are not used). */
function harness_parse_text($text) {
  return preg_replace_callback('/_\((.+?)\)_/m', function ($m) { return _($m[1]); }, $text);
}
