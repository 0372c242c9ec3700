<?php
/* Stand-in for the Unraid API's server state (7.4's header reads it); see ../../README.md. */
class ServerState {
  public function getServerStateJsonForHtmlAttr(): string {
    return htmlspecialchars(json_encode(['name' => 'Tower', 'description' => 'Media server']), ENT_QUOTES);
  }
}
