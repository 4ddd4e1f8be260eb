module dakghar.example/examples

go 1.19
