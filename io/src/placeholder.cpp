namespace stackless::io {}
