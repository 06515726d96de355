SELECT pgq.insert_event('@Q@', 'bench', :payload);
