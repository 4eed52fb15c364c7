#!/usr/bin/env bash
# Prints `newest=true` when the commit this GitHub job runs ($GITHUB_SHA) is still the head of main, else
# `newest=false` (a newer commit's run will publish): the publish job appends it to $GITHUB_OUTPUT and publishes
# only when true, so a run that finishes after a newer one never moves a tag back to an older image.
set -euo pipefail
: "${GITHUB_SHA:?set GITHUB_SHA to the commit this run builds}"
head="$(git ls-remote origin refs/heads/main | cut -f1)"
if [ -z "$head" ]; then
  echo "newest-on-main: cannot read main's head from origin" >&2
  exit 1
fi
if [ "$head" = "$GITHUB_SHA" ]; then
  echo "newest=true"
else
  echo "newest-on-main: main is at $head now, not $GITHUB_SHA: its run publishes, this one does not" >&2
  echo "newest=false"
fi
