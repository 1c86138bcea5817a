Feature: Every table mwsync tracks, whatever its key
  Beyond Account, Name, Product, Job and Transaction, MoneyWorks has tables keyed by a tax
  code, by a user's initials and by the sequence number. A first sync lays each out as the
  documented layout says, and a writer's edit of one of its records is written back.

  Scenario Outline: A first sync and a write-back on <table>, keyed by <key kind>
    Given a MoneyWorks document with every table
    And mwsync tracks <table>
    When mwsync polls
    Then the poll succeeds
    And main holds exactly the records MoneyWorks holds
    And main holds the <table> record "<key>" where the simulator's layout files it
    Given a writer sets the <field> of <table> record "<key>" to "<value>" on changes
    When mwsync polls
    Then the poll succeeds
    And the status on main says applied
    And MoneyWorks holds "<value>" as the <field> of <table> record "<key>"
    And the writer's commit is in main
    And main holds exactly the records MoneyWorks holds

    Examples:
      | table      | key kind        | key | field       | value            |
      | TaxRate    | taxcode         | G   | paidaccount | 2110             |
      | Login      | initials        | ADM | name        | Ann Administrator |
      | Department | code            | HQ  | description | Head Office North |
      | Contacts   | sequence number | 1   | position    | Chief Buyer      |
      | Memo       | sequence number | 1   | text        | Call back in May |
