Feature: The mwsync binary, end to end
  The real binary runs as a separate process against the fake MoneyWorks over HTTP and a real
  git repository, and is killed and restarted where a test needs a crash.

  Scenario: A page size out of range is refused before any network access
    When mwsync runs once with page size 5
    Then it exits with code 2 and says "page_size = 5 is out of range 10..=100"

  Scenario Outline: A flag beats the environment, which beats the config file
    When mwsync runs once with page size <flag> as a flag, <env> in the environment and <file> in the config file
    Then it exits with code 2 and says "page_size = <wins> is out of range 10..=100"

    Examples:
      | flag | env | file | wins |
      | 5    | 6   | 7    | 5    |
      | -    | 6   | 7    | 6    |
      | -    | -   | 7    | 7    |

  Scenario: A secret given as a flag is refused without being echoed
    When mwsync runs once with the git API key "tok-on-argv-3d1" as a flag
    Then it exits with code 2 and says "--git-api-key is not accepted on the command line"
    And its output does not contain "tok-on-argv-3d1"

  Scenario: main moved by someone else stops the binary with exit code 3
    Given a MoneyWorks document with 3 names
    And the repository is a real bare repository
    When the mwsync binary runs once
    Then it exits with code 0
    When someone else commits to main
    And the mwsync binary runs once
    Then it exits with code 3 and says "Only mwsync may write `main`"

  Scenario: The password and the API key appear nowhere in logs or history
    Given a MoneyWorks document with 4 names
    And a git server over HTTP that requires an API key
    When the mwsync binary runs once against it with the API key
    Then it exits with code 0
    And neither the password nor the API key appears in its output or in the git history
    And a plain git clone with the key holds every record
    When the mwsync binary runs once against it with a wrong API key
    Then it exits with code 2 and says "refused the credentials"

  Scenario: A crash after the import and before the merge is completed on restart without importing again
    Given a MoneyWorks document with 3 names
    And the name "ACME" with phone "555 0100" exists in MoneyWorks
    And a git server over HTTP that requires an API key
    And the mwsync binary has run once against it with the API key
    And a writer sets the phone of name "ACME" to "555 0142" on changes over HTTP
    When the mwsync binary is killed after the import
    Then MoneyWorks received 1 import
    When the mwsync binary runs once against it with the API key
    Then it exits with code 0
    And MoneyWorks received 1 import
    And the writer's commit is in main over HTTP

  Scenario: A SIGKILL during a multi-checkpoint first sync loses and duplicates nothing
    Given checkpoints of 10 records
    And the page size is 10
    And a MoneyWorks document with 45 names
    And a git server over HTTP that requires an API key
    When the mwsync binary is killed after checkpoint 2
    And the mwsync binary runs once against it with the API key
    Then it exits with code 0
    And main over HTTP holds exactly the records MoneyWorks holds
    And every record was created exactly once in the history over HTTP

  Scenario: SIGTERM in the middle of a poll abandons the slow request and stops within 5 s
    Given a MoneyWorks document with 3 names
    And the repository is a real bare repository
    When the mwsync daemon runs with a 1 second interval and receives SIGTERM during its second poll
    Then it exits with code 0 and says "stopping after the current step"
    And it stopped within 5 seconds of the signal
    And the log says "poll finished" 1 times

  Scenario: SIGTERM while the daemon waits for its next poll stops it at once
    Given a MoneyWorks document with 3 names
    And the repository is a real bare repository
    When the mwsync daemon runs with a 60 second interval and receives SIGTERM before its second poll
    Then it exits with code 0 and says "stopping after the current step"
    And it stopped within 5 seconds of the signal
    And the log says "poll finished" 1 times

  Scenario: After a human checks main, rebaseline lets mwsync continue
    Given a MoneyWorks document with 3 names
    And the repository is a real bare repository
    And the mwsync binary has run once
    And someone else commits to main
    And the mwsync binary has stopped with exit code 3
    When mwsync rebaseline runs
    Then it exits with code 0 and says "mwsync now treats"
    When the mwsync binary runs once
    Then it exits with code 0

  Scenario: A wrong MoneyWorks password stops mwsync with exit 2 and is not echoed
    Given a MoneyWorks document with 2 names
    And the repository is a real bare repository
    When the mwsync binary runs once with a wrong MoneyWorks password
    Then it exits with code 2 and says "MoneyWorks refused the login"
    And its output does not contain the wrong password

  Scenario: JSON logs and the status endpoint
    Given a MoneyWorks document with 3 names
    And the repository is a real bare repository
    When the mwsync daemon runs with JSON logs and a status server
    Then every log line is a JSON object
    And GET /status reported the main tip, a marker per table and no error
