Feature: A daemon that never stalls, never stops for the wrong reason and never says the wrong thing
  The real binary, killed and restarted where the scenario needs it, against the fake
  MoneyWorks and a real git repository: failures are classed by what can fix them, the
  guard on main trusts only commits it recorded pushing, and no message shows a secret.

  Scenario: A push refused by a pre-receive hook needs a human and carries the hook's words
    Given a MoneyWorks document with 3 names
    And the repository is a real bare repository
    And the repository's pre-receive hook refuses every push saying "policy: main is frozen until the audit ends"
    When the mwsync binary runs once
    Then it exits with code 3 and says "policy: main is frozen until the audit ends"
    And it says "refused to update `main` and will keep refusing"
    And the pre-receive hook ran 1 times
    When the mwsync daemon runs with a status server until /status says "parked"
    Then GET /status said "parked" with "policy: main is frozen until the audit ends"
    And the log says "mwsync is parked" 1 times

  Scenario: A push still running when mwsync is killed is adopted after a restart at once, 20 times in 20
    Given a MoneyWorks document with 3 names
    And the repository is a real bare repository
    And the mwsync binary has run once
    When 20 times a name is edited, mwsync is killed while a slowed git pushes, another name is edited and mwsync restarts at once
    Then every restart exited with code 0
    And some restart adopted the push of the process it replaced
    And main in the bare repository holds exactly the records MoneyWorks holds

  Scenario: A commit on main that only looks like mwsync's stops mwsync with exit code 3
    Given a MoneyWorks document with 3 names
    And the repository is a real bare repository
    And the mwsync binary has run once
    When someone else commits to main with mwsync's trailers
    And the mwsync binary runs once
    Then it exits with code 3 and says "Only mwsync may write `main`"

  Scenario: A fresh cache directory adopts an existing main only after a human says so
    Given a MoneyWorks document with 3 names
    And the repository is a real bare repository
    And the mwsync binary has run once
    When the cache directory is wiped
    And the mwsync binary runs once
    Then it exits with code 3 and says "this cache directory has never pushed it"
    When mwsync rebaseline runs
    Then it exits with code 0 and says "mwsync now treats"
    When the mwsync binary runs once
    Then it exits with code 0

  Scenario: An oversized reply is refused, downloaded once, with bounded memory
    Given a MoneyWorks server whose exports answer 300 MB
    And the repository is a real bare repository
    When the mwsync daemon runs against it until the log says "is larger than max_reply_mb = 256 MB"
    Then the oversized export was asked for once
    And the daemon's peak memory stayed under 300 MB
    And the log says "Name is parked until a human acts" 1 times

  Scenario: A full sync check with drift changes nothing on the remote, keeps its answer and is not asked again
    Given a MoneyWorks document with 8 names
    And the repository is a real bare repository
    And the mwsync binary has run once
    When name 3 is changed in MoneyWorks with a stamp from the day before
    And 1 names are edited in MoneyWorks
    And mwsync sync --full --check runs
    Then it exits with code 4 and says "full sync check found 1 differences"
    And main is where the previous run left it
    When a writer requests a full sync check "audit-7" on changes
    And the mwsync binary runs once
    Then it exits with code 4 and says "full sync check found 1 differences"
    When the mwsync binary runs once
    Then it exits with code 0
    And its output does not contain "requests a full sync"
    When 1 names are edited in MoneyWorks
    And the mwsync binary runs once
    Then it exits with code 0
    And the sync state on main records a check "audit-7" with 1 differences

  Scenario: A typo in the sync branch is refused, naming the branches that exist
    Given a MoneyWorks document with 3 names
    And the repository is a real bare repository
    And the mwsync binary has run once
    When the mwsync binary runs once with the sync branch "mian" and a fresh cache
    Then it exits with code 2 and says "the git remote has no branch `mian`; its branches are: `main`"
    And the bare repository has no branch "mian"

  Scenario: A changes branch that does not exist is warned about once and shown on /status
    Given a MoneyWorks document with 3 names
    And the repository is a real bare repository
    When the mwsync daemon runs with the changes branch "chnages" and a status server until it has polled 2 times
    Then the log says "the `chnages` branch does not exist on the git remote" 1 times
    And GET /status warned "the `chnages` branch does not exist"

  Scenario: An empty MWSYNC_CACHE_DIR is refused
    When mwsync runs once with MWSYNC_CACHE_DIR set but empty
    Then it exits with code 2 and says "cache_dir = (empty) is empty"

  Scenario Outline: No shape of URL shows its secret, at any log level
    When mwsync runs once at log level trace with the <which> URL "<url>"
    Then it exits with code 2
    And its output does not contain "s3cr3t-9"

    Examples:
      | which      | url                                                            |
      | MoneyWorks | admin:s3cr3t-9@127.0.0.1:9/REST/Acme.moneyworks                |
      | MoneyWorks | http//admin:s3cr3t-9@127.0.0.1:9/REST/Acme.moneyworks          |
      | MoneyWorks | http://admin@127.0.0.1:9/REST/Acme.moneyworks?password=s3cr3t-9 |
      | MoneyWorks | http://admin:x@127.0.0.1:9/REST/Acme.moneyworks#s3cr3t-9       |
      | MoneyWorks | ftp://admin:s3cr3t-9@127.0.0.1:9/REST/Acme.moneyworks          |
      | MoneyWorks | https://admin:s3cr3t-9@[::1/REST/Acme.moneyworks               |
      | git        | https://s3cr3t-9@git.example/books.git                         |
      | git        | https://mwsync:s3cr3t-9@git.example/books.git                  |
      | git        | https://git.example/books.git?token=s3cr3t-9                   |

  Scenario: The Basic headers never show, even at trace level
    Given a MoneyWorks document with 3 names
    And a git server over HTTP that requires an API key
    When the mwsync binary runs once against it with the API key at log level trace
    Then it exits with code 0
    And neither the password nor the API key appears in its output or in the git history

  Scenario: An [ERROR] answer to an export is retried, reported as an export failure, and the daemon keeps running
    Given a MoneyWorks document with 3 names, 2 accounts, 0 products, 0 jobs and 0 transactions
    And the repository is a real bare repository
    And MoneyWorks answers the next 5 export requests with an [ERROR] reply
    When the mwsync daemon runs with a status server until it has polled 2 times
    Then the log says "exporting Account failed (attempt 1), retrying: MoneyWorks could not carry out the `export`: it answered [ERROR]" 1 times
    And the log says "Account could not be read this cycle; the other tables and the writes went on" 1 times
    And GET /status said "running" with ""
    And the daemon stopped with exit code 0

  Scenario: A full sync check that finds nothing says so in words
    Given a MoneyWorks document with 3 names
    And the repository is a real bare repository
    And the mwsync binary has run once
    When mwsync sync --full --check runs
    Then it exits with code 0 and says "full sync check finished: main holds what MoneyWorks holds (nothing was committed)"
    And main is where the previous run left it
